/* The qrexec channel's framing (docs/qrexec.md; QrexecProtocol.cs is the other side): a 1-byte type, a 4-byte
 * big-endian payload length, the payload. */
#ifndef QREXEC_FRAME_H
#define QREXEC_FRAME_H

#include <stdint.h>

#define QREXEC_SOCKET_PATH "/run/qubes/qrexec.sock"
#define FRAME_HEADER 5
#define FRAME_MAX_PAYLOAD 65536
#define REQUEST_MAX_TARGET 64
#define REQUEST_MAX_SERVICE 1024
#define REFUSED_MAX 1024

enum {
    FRAME_REQUEST = 1,   /* client: TARGET \0 SERVICE[+ARG], first and once */
    FRAME_STDIN = 2,     /* client: bytes for the service's stdin */
    FRAME_STDIN_EOF = 3, /* client: the service's stdin ends (empty) */
    FRAME_STDOUT = 4,    /* server: bytes the service wrote to stdout */
    FRAME_STDERR = 5,    /* server: bytes the service wrote to stderr */
    FRAME_EXIT = 6,      /* server: the exit code (4 bytes, big-endian); the last frame */
    FRAME_REFUSED = 7,   /* server: the call is not allowed (or failed before the service ran); the last frame */
};

static inline void frame_header(unsigned char *p, int type, uint32_t len)
{
    p[0] = (unsigned char)type;
    p[1] = (unsigned char)(len >> 24);
    p[2] = (unsigned char)(len >> 16);
    p[3] = (unsigned char)(len >> 8);
    p[4] = (unsigned char)len;
}

static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* The payload length of the frame whose header starts at p. */
static inline uint32_t frame_length(const unsigned char *p)
{
    return be32(p + 1);
}

static inline int frame_valid_from_server(int type, uint32_t len)
{
    switch (type) {
    case FRAME_STDOUT:
    case FRAME_STDERR:
        return len <= FRAME_MAX_PAYLOAD;
    case FRAME_EXIT:
        return len == 4;
    case FRAME_REFUSED:
        return len <= REFUSED_MAX;
    default:
        return 0;
    }
}

#endif
