#ifndef ARCHON_SPAWN_H
#define ARCHON_SPAWN_H

#include <sys/types.h>

/// What to start. Every string is owned by the caller and only read during archon_spawn.
typedef struct archon_spawn_request {
    const char *path;            // absolute path of the executable (the caller resolves PATH)
    char *const *argv;           // NULL-terminated
    char *const *envp;           // NULL-terminated
    const char *cwd;             // working directory, or NULL
    const char *cgroup_procs;    // a job cgroup's cgroup.procs to join (writes "0"), or NULL
    const char *log_path;        // stdout and stderr are appended here
    const char *events_fifo;     // a FIFO opened read-write as fd 3, or NULL
    const char *status_path;     // where the shim writes the exit status ("exited N" / "signaled N")
    unsigned long long rlimit_as;// RLIMIT_AS in bytes, 0 = none
    int run_as;                  // non-zero: the trainer drops to uid, gid and groups just before execve
    uid_t uid;
    gid_t gid;
    const gid_t *groups;         // supplementary groups, ngroups of them (resolved by the caller: no NSS after fork)
    int ngroups;
    const char *lease_path;      // the node's lease file (CLOCK_MONOTONIC ms of the agent's last NATS contact), or NULL
    long long lease_timeout_ms;  // the shim fences the trainer once the lease is older than this
    long long fence_grace_ms;    // SIGTERM, then SIGKILL after this long
} archon_spawn_request;

/// Starts `req` under a small reaper ("shim") process:
///
///   agent ─fork─▶ shim (own session; ignores SIGTERM/SIGINT/SIGHUP; closes the agent's fds)
///                   └─fork─▶ trainer (own process group; joins the cgroup; rlimit; fds 1,2,3; drops to the run-as
///                                      user and groups when asked; execve)
///
/// The shim waits for the trainer and writes its exit status to `status_path` (atomically, via rename),
/// ("fenced N" when it stopped the trainer itself: see `lease_path`),
/// so the status survives an agent restart; the agent re-adopts a running job by its pids and that file.
/// The shim also holds the events FIFO open and writes the status only once the FIFO is empty, so the
/// trainer's last lines are never lost, even when it ends while no agent is running.
/// Self-fencing: with `lease_path`, the shim checks every 200 ms how old the agent's last NATS contact is; past
/// `lease_timeout_ms` (the agent frozen, or cut from NATS, so the controller will soon run the job elsewhere) it
/// sends SIGTERM to the trainer's process group, and SIGKILL `fence_grace_ms` later. A missing or unreadable lease
/// counts as expired.
/// After fork only async-signal-safe calls are made.
///
/// Returns the shim's pid and stores the trainer's pid (= its process group) in `*trainer_pid`,
/// or returns -errno: of fork/pipe, of joining the cgroup, of opening the log/FIFO, of dropping privileges, or of execve.
int archon_spawn(const archon_spawn_request *req, pid_t *trainer_pid);

#endif
