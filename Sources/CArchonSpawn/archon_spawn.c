#define _GNU_SOURCE
#include "archon_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        p += n; len -= (size_t)n;
    }
    return 0;
}

static ssize_t read_full(int fd, void *buf, size_t len) {
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

// Writes a non-negative decimal number; async-signal-safe.
static size_t format_int(char *out, long value) {
    char tmp[24];
    size_t n = 0, i = 0;
    int negative = value < 0;
    unsigned long v = negative ? (unsigned long)(-value) : (unsigned long)value;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
    if (negative) out[i++] = '-';
    while (n > 0) out[i++] = tmp[--n];
    return i;
}

static void write_status(const char *path, const char *word, long value) {
    char tmp_path[4096];
    size_t len = strlen(path);
    if (len + 5 >= sizeof tmp_path) return;
    memcpy(tmp_path, path, len);
    memcpy(tmp_path + len, ".tmp", 5);
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[64];
    size_t n = strlen(word);
    memcpy(line, word, n);
    line[n++] = ' ';
    n += format_int(line + n, value);
    line[n++] = '\n';
    write_all(fd, line, n);
    fsync(fd);
    close(fd);
    rename(tmp_path, path);
}

static void close_fds_from(int first, int keep1, int keep2) {
    struct rlimit rl;
    long max = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536) max = (long)rl.rlim_cur;
    for (int fd = first; fd < max; fd++) {
        if (fd != keep1 && fd != keep2) close(fd);
    }
}

static long long monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// The lease's time (CLOCK_MONOTONIC ms, decimal), or -1 when it cannot be read; async-signal-safe.
static long long read_lease(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[32];
    ssize_t n = read_full(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    long long value = 0;
    ssize_t i = 0;
    for (; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) value = value * 10 + (buf[i] - '0');
    return i == 0 ? -1 : value;
}

// Waits for the trainer; fences it (SIGTERM, grace, SIGKILL to its group) once the lease is too old.
// Returns whether it fenced.
static int wait_fencing(const archon_spawn_request *req, pid_t trainer, int *status) {
    if (!req->lease_path) {
        while (waitpid(trainer, status, 0) < 0) {
            if (errno != EINTR) _exit(1);
        }
        return 0;
    }
    long long terminated_at = -1;
    int killed = 0;
    for (;;) {
        pid_t r = waitpid(trainer, status, WNOHANG);
        if (r == trainer) return terminated_at >= 0;
        if (r < 0 && errno != EINTR) _exit(1);
        long long now = monotonic_ms();
        if (terminated_at < 0) {
            long long lease = read_lease(req->lease_path);
            if (lease < 0 || now - lease > req->lease_timeout_ms) {
                kill(-trainer, SIGTERM);
                terminated_at = now;
            }
        } else if (!killed && now - terminated_at > req->fence_grace_ms) {
            kill(-trainer, SIGKILL);
            killed = 1;
        }
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
}

// The trainer, after the second fork. Never returns.
static void exec_trainer(const archon_spawn_request *req, int error_pipe) {
    int err;
    setpgid(0, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (req->cgroup_procs) {
        int fd = open(req->cgroup_procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write_all(fd, "0", 1) < 0) { err = errno; goto fail; }
        close(fd);
    }
    if (req->rlimit_as > 0) {
        struct rlimit rl = { (rlim_t)req->rlimit_as, (rlim_t)req->rlimit_as };
        if (setrlimit(RLIMIT_AS, &rl) < 0) { err = errno; goto fail; }
    }
    int null_fd = open("/dev/null", O_RDONLY);
    int log_fd = open(req->log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (null_fd < 0 || log_fd < 0) { err = errno; goto fail; }
    int events_fd = -1;
    if (req->events_fifo) {
        // Read-write: the trainer holds a reader itself, so a restarting agent never causes SIGPIPE.
        events_fd = open(req->events_fifo, O_RDWR);
        if (events_fd < 0) { err = errno; goto fail; }
    }
    // Move the error pipe out of the way of 0-3 before the dup2s.
    if (error_pipe <= 3) {
        int moved = fcntl(error_pipe, F_DUPFD_CLOEXEC, 10);
        if (moved < 0) { err = errno; goto fail; }
        error_pipe = moved;
    }
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) { err = errno; goto fail; }
    if (events_fd >= 0 && dup2(events_fd, 3) < 0) { err = errno; goto fail; }
    close_fds_from(events_fd >= 0 ? 4 : 3, error_pipe, -1);
    if (req->cwd && chdir(req->cwd) < 0) { err = errno; goto fail; }
    // Last, once the cgroup, limits and files that need the agent's rights are in place. Groups before the gid
    // before the uid: after setuid nothing else may be changed.
    if (req->run_as) {
        if (setgroups((size_t)req->ngroups, req->groups) < 0) { err = errno; goto fail; }
        if (setgid(req->gid) < 0) { err = errno; goto fail; }
        if (setuid(req->uid) < 0) { err = errno; goto fail; }
        // A process that can take root back has not given it up.
        if (req->uid != 0 && (setuid(0) == 0 || geteuid() != req->uid || getegid() != req->gid)) { err = EPERM; goto fail; }
    }
    execve(req->path, req->argv, req->envp);
    err = errno;
fail:
    write_all(error_pipe, &err, sizeof err);
    _exit(127);
}

// The shim, after the first fork. Never returns.
static void run_shim(const archon_spawn_request *req, int info_pipe) {
    setsid();
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    // Tiny and must outlive an OOM kill of the trainer. Fails harmlessly without privileges.
    int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (adj >= 0) { write_all(adj, "-1000", 5); close(adj); }
    // Drop the agent's descriptors (NATS sockets, other jobs' pipes): the shim outlives the agent.
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) { dup2(null_fd, 0); dup2(null_fd, 1); dup2(null_fd, 2); if (null_fd > 2) close(null_fd); }
    close_fds_from(3, info_pipe, -1);

    // The shim holds the events FIFO open too: lines the trainer wrote stay in the pipe until an agent
    // has read them, even when the trainer has exited and no agent is running.
    int events_hold = req->events_fifo ? open(req->events_fifo, O_RDWR | O_CLOEXEC) : -1;
    int error_pipe[2];
    pid_t info[2] = { -1, 0 };  // trainer pid, errno
    if (pipe2(error_pipe, O_CLOEXEC) < 0) {
        info[1] = errno;
        write_all(info_pipe, info, sizeof info);
        _exit(127);
    }
    pid_t trainer = fork();
    if (trainer < 0) {
        info[1] = errno;
        write_all(info_pipe, info, sizeof info);
        _exit(127);
    }
    if (trainer == 0) {
        close(error_pipe[0]);
        close(info_pipe);
        exec_trainer(req, error_pipe[1]);
    }
    close(error_pipe[1]);
    int exec_errno = 0;
    ssize_t n = read_full(error_pipe[0], &exec_errno, sizeof exec_errno);
    close(error_pipe[0]);
    info[0] = trainer;
    info[1] = n == (ssize_t)sizeof exec_errno ? exec_errno : 0;
    write_all(info_pipe, info, sizeof info);
    close(info_pipe);

    int status = 0;
    int fenced = info[1] == 0 ? wait_fencing(req, trainer, &status) : (waitpid(trainer, &status, 0), 0);
    // The exit status is written only once every event line has been read: an agent that sees the
    // status has seen everything the trainer said before it ended.
    if (events_hold >= 0) {
        for (;;) {
            int unread = 0;
            if (ioctl(events_hold, FIONREAD, &unread) < 0 || unread == 0) break;
            struct timespec pause = { 0, 50 * 1000 * 1000 };
            nanosleep(&pause, NULL);
        }
        close(events_hold);
    }
    if (info[1] != 0) {
        write_status(req->status_path, "spawn-error", info[1]);
    } else if (fenced) {
        write_status(req->status_path, "fenced", WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        write_status(req->status_path, "signaled", WTERMSIG(status));
    } else {
        write_status(req->status_path, "exited", WEXITSTATUS(status));
    }
    _exit(0);
}

int archon_spawn(const archon_spawn_request *req, pid_t *trainer_pid) {
    int info_pipe[2];
    if (pipe2(info_pipe, O_CLOEXEC) < 0) return -errno;
    pid_t shim = fork();
    if (shim < 0) {
        int err = errno;
        close(info_pipe[0]);
        close(info_pipe[1]);
        return -err;
    }
    if (shim == 0) {
        close(info_pipe[0]);
        run_shim(req, info_pipe[1]);
    }
    close(info_pipe[1]);
    pid_t info[2] = { -1, 0 };
    ssize_t n = read_full(info_pipe[0], info, sizeof info);
    close(info_pipe[0]);
    if (n != (ssize_t)sizeof info) return -ECHILD;
    if (info[0] < 0 || info[1] != 0) {
        int status;
        waitpid(shim, &status, 0);
        return -(info[1] != 0 ? info[1] : ECHILD);
    }
    *trainer_pid = info[0];
    return shim;
}
