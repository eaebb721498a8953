/// What a job may run on the fleet: which programs it may start, and which environment variables it may not set.
///
/// One judgment in one place: the controller applies it when a spec is submitted or validated (policy keys
/// `validation.entrypoints` and `validation.deniedEnvironment`), and each agent applies it again before it starts a
/// process (`--allow-entrypoint`, `--deny-env`), so a desired state written by anyone but a controller with the same
/// rules still runs nothing else.
///
/// Entrypoints (the spec's `command[0]`), each entry one of:
/// - a program name without `/` (`python3`): exactly that name, looked up in the agent's own `PATH`, never the job's;
/// - an absolute path (`/usr/bin/python3`): exactly that file;
/// - an absolute path ending in `/` (`/opt/trainers/`): any program under that directory.
///
/// A command naming a relative path (`./train.sh`) or a path with `.`, `..` or `//` in it never matches.
/// Environment patterns are names (`GCONV_PATH`) or prefixes ending in `*` (`LD_*`), matched case-sensitively.
public struct ExecutionRules: Sendable, Hashable {
    /// Allowed `command[0]` values: names, absolute paths, or directories ending in `/`.
    public var entrypoints: [String]
    /// Environment variable names or `PREFIX*` patterns a job may not set.
    public var deniedEnvironment: [String]

    /// The Python 3 interpreter the shipped trainers and the helper library use. An interpreter runs whatever script
    /// (or `-c` code) it is given: list the trainers themselves, or their directory, to allow only vetted code.
    public static let defaultEntrypoints = ["python3", "/usr/bin/python3", "/usr/local/bin/python3"]

    /// Variables that change how the loader, libc, or an interpreter runs a program, rather than what the program
    /// computes: glibc's list of variables it ignores in setuid programs (less the harmless `TMPDIR` and `TZDIR`),
    /// and the interpreters' code-injection variables. (`ARCHON_*` need no rule: the agent sets the contract's
    /// variables over whatever the job's `env` says, and the controller sets `ARCHON_DATASET_PATH` there itself.)
    public static let defaultDeniedEnvironment = [
        // The dynamic loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, …
        "LD_*",
        // glibc: tunables (CVE-2023-4911), iconv modules, locale and message catalogs, resolver, malloc debugging.
        "GLIBC_TUNABLES", "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "MALLOC_*", "NIS_PATH",
        "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS",
        // OpenSSL loads engines and providers named by its configuration.
        "OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES",
        // Interpreters and shells: code run before, or instead of, the entrypoint's own.
        "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONUSERBASE", "PYTHONBREAKPOINT",
        "BASH_ENV", "ENV", "BASH_FUNC_*", "SHELLOPTS", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYLIB", "RUBYOPT",
        "NODE_OPTIONS", "NODE_PATH",
    ]

    public init(entrypoints: [String] = Self.defaultEntrypoints, deniedEnvironment: [String] = Self.defaultDeniedEnvironment) {
        self.entrypoints = entrypoints
        self.deniedEnvironment = deniedEnvironment
    }

    /// Why `command` may not run, in words for the submitter; nil when its entrypoint is allowed.
    public func entrypointRefusal(_ command: [String]) -> String? {
        guard let program = command.first, !program.isEmpty else { return "required: the argv of the training process" }
        let allowed = entrypoints.isEmpty ? "none" : entrypoints.joined(separator: ", ")
        if program.hasPrefix("/") {
            let parts = program.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            if parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                return "'\(program)' is not a plain absolute path ('.', '..' and '//' are not allowed); allowed entrypoints: \(allowed)"
            }
        } else if program.contains("/") {
            return "'\(program)' is a relative path, which depends on the agent's working directory; use an absolute path; allowed entrypoints: \(allowed)"
        }
        if entrypoints.contains(where: { Self.entry($0, allows: program) }) { return nil }
        return "'\(program)' is not an allowed entrypoint; allowed: \(allowed) (a name is looked up in the agent's PATH, not the job's; an entry ending in '/' allows the programs under it)"
    }

    /// The pattern that denies the variable `name`, or nil when a job may set it.
    public func denyingPattern(for name: String) -> String? {
        deniedEnvironment.first { Self.pattern($0, matches: name) }
    }

    /// Every variable of `env` a job may not set, sorted by name, with the reason.
    public func environmentProblems(_ env: [String: String]) -> [(name: String, message: String)] {
        env.keys.sorted().compactMap { name in
            if name.isEmpty || name.contains("=") || name.contains("\0") {
                return (name, "not a valid environment variable name (empty, or contains '=' or NUL)")
            }
            guard let pattern = denyingPattern(for: name) else { return nil }
            return (name, "may not be set by a job: it changes how the loader, libc or an interpreter runs the program (denied by '\(pattern)')")
        }
    }

    /// What is wrong with an allowlist entry, or nil.
    public static func entrypointEntryProblem(_ entry: String) -> String? {
        if entry.isEmpty { return "must not be empty" }
        if entry.hasPrefix("/") {
            let parts = entry.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            let inner = entry.hasSuffix("/") ? parts.dropLast() : parts[...]
            if inner.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
                return "'\(entry)' must be a plain absolute path (no '.', '..' or '//')"
            }
            return nil
        }
        if entry.contains("/") { return "'\(entry)' must be a program name without '/' or an absolute path" }
        return nil
    }

    /// What is wrong with an environment pattern, or nil.
    public static func environmentPatternProblem(_ pattern: String) -> String? {
        if pattern.isEmpty { return "must not be empty" }
        if pattern.contains("=") { return "'\(pattern)' must be a variable name or a prefix ending in '*', without '='" }
        if pattern.dropLast().contains("*") { return "'\(pattern)' may have '*' only at its end (a prefix)" }
        return nil
    }

    private static func entry(_ entry: String, allows program: String) -> Bool {
        if entry.hasSuffix("/") { return entry.hasPrefix("/") && program.hasPrefix(entry) && program.count > entry.count }
        return entry == program
    }

    private static func pattern(_ pattern: String, matches name: String) -> Bool {
        if pattern.hasSuffix("*") { return name.hasPrefix(pattern.dropLast()) }
        return pattern == name
    }
}
