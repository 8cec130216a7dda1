/*
 * qrexec-client-vm TARGET SERVICE[+ARG]: call a qrexec service from inside a qube (docs/qrexec.md).
 * Connects to the qube's channel, sends the request, relays stdin to the service and the service's stdout and
 * stderr back, and exits with the service's exit code (126 with "Request refused" when the call is denied).
 * Only bytes cross the channel, never file descriptors. The socket is non-blocking with one pending outgoing
 * frame, so the channel is always read while stdin waits: a service that writes much before reading cannot
 * deadlock against us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qrexec-frame.h"

static unsigned char in_buf[FRAME_HEADER + FRAME_MAX_PAYLOAD];
static size_t in_len;
static unsigned char out_buf[FRAME_HEADER + FRAME_MAX_PAYLOAD];
static size_t out_len, out_off;

static void die(int code, const char *msg)
{
    fprintf(stderr, "qrexec-client-vm: %s\n", msg);
    exit(code);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void queue_frame(int type, const void *payload, uint32_t len)
{
    frame_header(out_buf, type, len);
    if (len)
        memcpy(out_buf + FRAME_HEADER, payload, len);
    out_len = FRAME_HEADER + len;
    out_off = 0;
}

/* Handles whole frames from the channel; returns when more bytes are needed. */
static void handle_frames(int *stdout_ok)
{
    for (;;) {
        if (in_len < FRAME_HEADER)
            return;
        int type = in_buf[0];
        uint32_t len = frame_length(in_buf);
        if (!frame_valid_from_server(type, len))
            die(255, "malformed frame from qubesd");
        if (in_len < FRAME_HEADER + len)
            return;
        const unsigned char *p = in_buf + FRAME_HEADER;
        switch (type) {
        case FRAME_STDOUT:
            /* A closed stdout (head, a broken pipe) must not lose the exit code: stop writing, keep reading. */
            if (*stdout_ok && write_all(1, p, len) < 0)
                *stdout_ok = 0;
            break;
        case FRAME_STDERR:
            (void)write_all(2, p, len);
            break;
        case FRAME_EXIT:
            exit((int)(be32(p) & 0xff));
        case FRAME_REFUSED:
            if (len)
                fprintf(stderr, "Request refused: %.*s\n", (int)len, (const char *)p);
            else
                fprintf(stderr, "Request refused\n");
            exit(126);
        }
        memmove(in_buf, in_buf + FRAME_HEADER + len, in_len - FRAME_HEADER - len);
        in_len -= FRAME_HEADER + len;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: qrexec-client-vm TARGET SERVICE[+ARG]\n");
        return 2;
    }
    const char *target = argv[1], *service = argv[2];
    size_t tl = strlen(target), sl = strlen(service);
    if (tl == 0 || sl == 0 || tl > REQUEST_MAX_TARGET || sl > REQUEST_MAX_SERVICE)
        die(2, "target or service name empty or too long");
    signal(SIGPIPE, SIG_IGN);
    /* A closed stdin/stdout/stderr would be reused by the socket below: /dev/null takes its place (an empty stdin). */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
            return 255;

    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    const char *path = getenv("QREXEC_SOCKET");
    if (!path || !*path)
        path = QREXEC_SOCKET_PATH;
    if (strlen(path) >= sizeof addr.sun_path)
        die(2, "socket path too long");
    strcpy(addr.sun_path, path);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "qrexec-client-vm: cannot connect to %s: %s\n", path, strerror(errno));
        return 255;
    }
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);

    unsigned char request[REQUEST_MAX_TARGET + 1 + REQUEST_MAX_SERVICE];
    memcpy(request, target, tl);
    request[tl] = 0;
    memcpy(request + tl + 1, service, sl);
    queue_frame(FRAME_REQUEST, request, (uint32_t)(tl + 1 + sl));

    int stdin_open = 1, stdout_ok = 1;
    for (;;) {
        struct pollfd fds[2] = {
            { .fd = s, .events = POLLIN | (out_off < out_len ? POLLOUT : 0) },
            /* stdin is read only when the previous frame is out: one frame of buffering, no more. */
            { .fd = (stdin_open && out_off >= out_len) ? 0 : -1, .events = POLLIN },
        };
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die(255, "poll failed");
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(s, in_buf + in_len, sizeof in_buf - in_len);
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                die(255, "connection to qubesd lost");
            if (r == 0)
                die(255, "connection to qubesd closed before the service ended");
            if (r > 0) {
                in_len += (size_t)r;
                handle_frames(&stdout_ok);
            }
        }
        if (out_off < out_len) {
            ssize_t w = write(s, out_buf + out_off, out_len - out_off);
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                die(255, "connection to qubesd lost");
            if (w > 0)
                out_off += (size_t)w;
        }
        if (fds[1].fd == 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
            unsigned char buf[FRAME_MAX_PAYLOAD];
            ssize_t r = read(0, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r > 0)
                queue_frame(FRAME_STDIN, buf, (uint32_t)r);
            else {
                /* EOF (or an unreadable stdin): the service sees its stdin end. */
                queue_frame(FRAME_STDIN_EOF, NULL, 0);
                stdin_open = 0;
            }
        }
    }
}
