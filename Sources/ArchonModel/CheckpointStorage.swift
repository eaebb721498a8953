/// Where checkpoints are written: `<root>/<job>/attempt-<n>/`, on a node's own disk or on storage every node mounts.
public struct CheckpointStorage: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Absolute folder.
    public var root: String
    /// Every node that declares the same shared root reads the same files there (a network filesystem mounted at
    /// that path on each node); false = local: only the node that wrote a checkpoint can read it.
    public var shared: Bool

    public init(root: String, shared: Bool) {
        self.root = root
        self.shared = shared
    }

    /// The folder one attempt of a job writes its checkpoints to. One folder per attempt: attempts on different
    /// nodes never overwrite (or prune) each other's files on shared storage.
    public func directory(job: String, attempt: Int) -> String {
        "\(root.hasSuffix("/") ? String(root.dropLast()) : root)/\(job)/attempt-\(attempt)"
    }

    /// "shared /mnt/ckpt" or "local /var/lib/archon/checkpoints".
    public var description: String { "\(shared ? "shared" : "local") \(root)" }

    /// Whether `path` is `folder` or lies under it, compared by path components (`/a/bc` is not under `/a/b`). A path
    /// with a `.` or `..` component is never within anything: `/ckpt/../etc` must not pass as under `/ckpt`.
    public static func path(_ path: String, isWithin folder: String) -> Bool {
        let p = path.split(separator: "/", omittingEmptySubsequences: true)
        let f = folder.split(separator: "/", omittingEmptySubsequences: true)
        return path.hasPrefix("/") && folder.hasPrefix("/") && p.count >= f.count && Array(p.prefix(f.count)) == f
            && !p.contains(where: { $0 == "." || $0 == ".." })
    }

    /// Why `root` cannot be a checkpoint root (a job's `checkpoint.sharedRoot` or an agent's flag), or nil: it must
    /// be an absolute folder without `.`/`..` components, not `/` itself.
    public static func rootProblem(_ root: String) -> String? {
        guard root.hasPrefix("/") else { return "must be an absolute path" }
        let parts = root.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.isEmpty else { return "must not be /" }
        if parts.contains(where: { $0 == "." || $0 == ".." }) { return "must not contain . or .. components" }
        if root.utf8.count > 1024 { return "must be at most 1024 bytes" }
        if root.contains("\0") { return "must not contain NUL" }
        return nil
    }
}
