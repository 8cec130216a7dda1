/*
 * qrexec-service-exec: the last host-controlled step before a qrexec service runs inside a qube (docs/qrexec.md).
 * qubesd runs it through nsenter, already inside the target's namespaces and root, still with the host's
 * capabilities. nsenter executes it through /proc/self/fd (a descriptor opened on the host), never by a path inside
 * the qube, which the qube could redirect. It then
 *   - closes every inherited descriptor but 0, 1, 2,
 *   - sets no_new_privs and drops every capability (bounding, ambient, inheritable, permitted, effective),
 *   - changes to $HOME (else /),
 *   - and only then looks at the qube's files: `service NAME ARG` runs /etc/qubes-rpc/NAME+ARG, else
 *     /etc/qubes-rpc/NAME (exit 127 with a message when neither exists); `exec CMD ARGS...` runs a command;
 *     `slot` writes one byte (ACK, 0x06) on stdout once parked, then waits for its call: the first line of stdin,
 *     `NAME<TAB>ARG<TAB>CALLER`, read a byte at a time so the call's own input stays in the pipe, then runs that
 *     service as `service` would (a preloaded disposable keeps one parked, so a call does not wait for the launch:
 *     docs/qrexec.md).
 * The environment is the one qubesd set (it is cleared on the host side); a slot adds the call's variables.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RPC_DIR "/etc/qubes-rpc/"

static void fail(const char *what)
{
    fprintf(stderr, "qrexec-service-exec: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void close_inherited(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        return;
    }
    int own = dirfd(d);
    struct dirent *e;
    int fds[1024], n = 0;
    while ((e = readdir(d)) && n < 1024) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != own)
            fds[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

static void drop_privileges(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("no_new_privs");
    for (int cap = 0; cap < 64; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            fail("dropping the bounding set");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        fail("clearing ambient capabilities");
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) < 0)
        fail("dropping capabilities");
}

int main(int argc, char **argv)
{
    close_inherited();
    drop_privileges();
    const char *home = getenv("HOME");
    if (!home || chdir(home) < 0)
        if (chdir("/") < 0)
            fail("chdir");

    char request[1024];
    const char *name = NULL, *arg = NULL;
    if (argc == 2 && strcmp(argv[1], "slot") == 0) {
        /* Parked: says so (one byte qubesd reads off stdout before any call), so the qube is not frozen mid-launch. */
        if (write(1, "\x06", 1) != 1)
            fail("announcing the slot");
        size_t n = 0;
        for (;;) {
            char c;
            ssize_t r = read(0, &c, 1);
            if (r == 0)
                return 0; /* never called: the disposable went */
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                fail("reading the call");
            }
            if (c == '\n')
                break;
            if (n + 1 >= sizeof request) {
                fprintf(stderr, "qrexec: call line too long\n");
                return 125;
            }
            request[n++] = c;
        }
        request[n] = 0;
        char *tab = strchr(request, '\t'), *caller = tab ? strchr(tab + 1, '\t') : NULL;
        if (!tab || !caller) {
            fprintf(stderr, "qrexec: malformed call line\n");
            return 125;
        }
        *tab = 0;
        *caller++ = 0;
        name = request;
        arg = tab + 1;
        char full[sizeof request + 1];
        snprintf(full, sizeof full, *arg ? "%s+%s" : "%s%s", name, arg);
        if (setenv("QREXEC_REMOTE_DOMAIN", caller, 1) < 0 || setenv("QREXEC_SERVICE_ARGUMENT", arg, 1) < 0
            || setenv("QREXEC_SERVICE_FULL_NAME", full, 1) < 0)
            fail("setenv");
    } else if (argc == 4 && strcmp(argv[1], "service") == 0) {
        name = argv[2];
        arg = argv[3];
    }
    if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "qrexec: cannot run %s: %s\n", argv[2], strerror(errno));
        return 127;
    }
    if (!name) {
        fprintf(stderr, "usage: qrexec-service-exec service NAME ARG | slot | exec CMD [ARGS...]\n");
        return 125;
    }
    /* qubesd validated both; a '/' would leave the directory. */
    if (strchr(name, '/') || strchr(arg, '/') || !*name) {
        fprintf(stderr, "qrexec: invalid service name\n");
        return 125;
    }
    char path[sizeof RPC_DIR + 2048];
    struct stat st;
    int found = 0;
    if (*arg) {
        snprintf(path, sizeof path, RPC_DIR "%s+%s", name, arg);
        found = stat(path, &st) == 0;
    }
    if (!found) {
        snprintf(path, sizeof path, RPC_DIR "%s", name);
        found = stat(path, &st) == 0;
    }
    if (!found) {
        fprintf(stderr, "qrexec: service %s%s%s not found in this qube\n", name, *arg ? "+" : "", arg);
        return 127;
    }
    char *args[] = { path, NULL };
    execv(path, args);
    fprintf(stderr, "qrexec: cannot run service %s: %s\n", path, strerror(errno));
    return 126;
}
