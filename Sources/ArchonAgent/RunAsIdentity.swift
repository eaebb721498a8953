import Foundation

/// The unprivileged user and groups trainers run as (`archon agent --run-as-user/--run-as-group`).
///
/// Names are resolved here, once, before any fork: after fork only async-signal-safe calls are allowed, and
/// looking up a user (NSS) is not one of them.
public struct RunAsIdentity: Sendable, Hashable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups: the user's (from the group database) when it has an entry, else just `gid`.
    public var groups: [UInt32]
    /// The user's name and home directory, when the user database has them (`USER`, `LOGNAME`, `HOME`).
    public var userName: String?
    public var home: String?

    public init(uid: UInt32, gid: UInt32, groups: [UInt32], userName: String? = nil, home: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.userName = userName
        self.home = home
    }

    /// "nobody (uid 65534, gid 65534)".
    public var description: String { "\(userName ?? "uid \(uid)") (uid \(uid), gid \(gid))" }

    public struct ResolveError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Resolves `--run-as-user` and `--run-as-group` (names or numeric ids). The group defaults to the user's
    /// primary group; a numeric user without a user-database entry needs an explicit group. Root is refused:
    /// running trainers "unprivileged" as uid 0 would only pretend.
    public static func resolve(user: String, group: String?) throws(ResolveError) -> RunAsIdentity {
        let account = lookup(user)
        let uid: UInt32
        if let account {
            uid = account.uid
        } else if let number = UInt32(user) {
            uid = number
        } else {
            throw ResolveError(description: "--run-as-user: no user '\(user)' on this machine")
        }
        if uid == 0 { throw ResolveError(description: "--run-as-user: '\(user)' is root; choose an unprivileged user") }

        let gid: UInt32
        if let group {
            if let named = groupID(named: group) {
                gid = named
            } else if let number = UInt32(group) {
                gid = number
            } else {
                throw ResolveError(description: "--run-as-group: no group '\(group)' on this machine")
            }
        } else if let account {
            gid = account.gid
        } else {
            throw ResolveError(description: "--run-as-user: uid \(uid) has no entry in the user database; give --run-as-group too")
        }
        if gid == 0 { throw ResolveError(description: "--run-as-group: group 0 is root's; choose an unprivileged group") }

        var groups = [gid]
        if let account, group == nil {
            groups = supplementaryGroups(of: account.name, primary: gid)
        }
        return RunAsIdentity(uid: uid, gid: gid, groups: groups, userName: account?.name, home: account?.home)
    }

    private struct Account {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var home: String
    }

    private static func bufferSize() -> Int {
        let size = sysconf(Int32(_SC_GETPW_R_SIZE_MAX))
        return size > 0 ? size : 16384
    }

    private static func lookup(_ user: String) -> Account? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: bufferSize())
        var status = getpwnam_r(user, &entry, &buffer, buffer.count, &result)
        if result == nil, let number = UInt32(user) {
            status = getpwuid_r(number, &entry, &buffer, buffer.count, &result)
        }
        guard status == 0, result != nil else { return nil }
        return Account(name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid, home: String(cString: entry.pw_dir))
    }

    private static func groupID(named name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: bufferSize())
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    private static func supplementaryGroups(of user: String, primary: UInt32) -> [UInt32] {
        var count: Int32 = 32
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let previous = count
            if getgrouplist(user, primary, &groups, &count) >= 0 { return Array(groups.prefix(Int(count))) }
            if count <= previous { return [primary] }  // nothing larger to retry with
        }
    }
}
