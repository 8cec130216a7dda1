/*
 * qfile-unpacker DIR: receives a qubes.Filecopy stream (qfile.h) on stdin into DIR, which must exist. Every name is
 * untrusted: it must be relative, its components neither empty nor "." nor "..", without control characters; every
 * component is opened relative to the previous one without following symlinks, so nothing lands outside DIR; only
 * regular files and directories are created (no symlinks, devices, FIFOs), with permission bits only (no setuid);
 * an existing file is never overwritten. Exits 0 after the end marker, else 1 with a message (what was written
 * before the error stays, as in Qubes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfile.h"

static void fail(const char *why, const char *name)
{
    fprintf(stderr, "qfile-unpacker: %s%s%s\n", why, name ? ": " : "", name ? name : "");
    exit(1);
}

static void read_exact(void *buf, size_t n)
{
    if (n && fread(buf, 1, n, stdin) != n)
        fail("stream ended early", NULL);
}

/* Checks the untrusted name; returns 0 when every component is acceptable. */
static int check_name(const char *name, size_t len)
{
    if (len == 0 || name[0] == '/')
        return -1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            size_t cl = i - start;
            if (cl == 0 || (cl == 1 && name[start] == '.') || (cl == 2 && name[start] == '.' && name[start + 1] == '.'))
                return -1;
            start = i + 1;
        } else if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return -1;
    }
    return 0;
}

/* Opens the directory holding the last component of name (walking without following symlinks); returns its fd and
 * points *leaf at the last component. */
static int open_parent(int base, char *name, char **leaf)
{
    int dir = dup(base);
    char *p = name, *slash;
    while ((slash = strchr(p, '/'))) {
        *slash = 0;
        int next = openat(dir, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        *slash = '/';
        if (next < 0)
            fail("cannot open the directory of", name);
        close(dir);
        dir = next;
        p = slash + 1;
    }
    *leaf = p;
    return dir;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: qfile-unpacker DIR\n");
        return 2;
    }
    int base = open(argv[1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (base < 0)
        fail("cannot open the destination", argv[1]);
    umask(022);
    char header[QFILE_MAX_HEADER];
    static char name[QFILE_MAX_NAME + 1];
    static char buf[65536];
    for (;;) {
        if (!fgets(header, sizeof header, stdin))
            fail("stream ended without its end marker", NULL);
        if (!strchr(header, '\n'))
            fail("header line too long", NULL);
        if (!strcmp(header, "end\n"))
            return 0;
        char type, extra;
        unsigned mode;
        long long size;
        unsigned long name_len;
        if (sscanf(header, "%c %o %lld %lu%c", &type, &mode, &size, &name_len, &extra) != 5 || extra != '\n'
            || (type != 'f' && type != 'd') || size < 0 || (type == 'd' && size != 0) || name_len == 0 || name_len > QFILE_MAX_NAME)
            fail("malformed header", NULL);
        read_exact(name, name_len);
        name[name_len] = 0;
        if (memchr(name, 0, name_len) || check_name(name, name_len) < 0)
            fail("refused an unsafe name", NULL);
        char *leaf;
        int dir = open_parent(base, name, &leaf);
        mode &= 0777;
        if (type == 'd') {
            struct stat st;
            if (mkdirat(dir, leaf, mode | 0700) < 0
                && !(errno == EEXIST && fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)))
                fail("cannot create the directory", name);
        } else {
            int fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode | 0600);
            if (fd < 0)
                fail(errno == EEXIST ? "already exists" : "cannot create", name);
            while (size > 0) {
                size_t chunk = size < (long long)sizeof buf ? (size_t)size : sizeof buf;
                read_exact(buf, chunk);
                for (size_t off = 0; off < chunk;) {
                    ssize_t w = write(fd, buf + off, chunk - off);
                    if (w < 0)
                        fail("write error", name);
                    off += (size_t)w;
                }
                size -= (long long)chunk;
            }
            fchmod(fd, mode);
            close(fd);
        }
        close(dir);
    }
}
