/*
 * qfile-agent FILE...: writes the files and directories named (recursively) to stdout as a qubes.Filecopy stream
 * (qfile.h). Symlinks, devices, FIFOs and sockets are refused: the copy stops with an error and no end marker, so
 * the receiver fails too.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfile.h"

static void fail(const char *path, const char *why)
{
    fprintf(stderr, "qfile-agent: %s: %s\n", path, why);
    exit(1);
}

static void send_entry(const char *path, const char *name)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        fail(path, strerror(errno));
    size_t nl = strlen(name);
    if (nl == 0 || nl > QFILE_MAX_NAME)
        fail(path, "name too long");
    if (S_ISREG(st.st_mode)) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            fail(path, strerror(errno));
        printf("f %o %lld %zu\n", (unsigned)(st.st_mode & 0777), (long long)st.st_size, nl);
        fwrite(name, 1, nl, stdout);
        char buf[65536];
        long long left = st.st_size;
        while (left > 0) {
            ssize_t r = read(fd, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
            if (r <= 0)
                fail(path, r < 0 ? strerror(errno) : "file shrank while being copied");
            fwrite(buf, 1, (size_t)r, stdout);
            left -= r;
        }
        close(fd);
    } else if (S_ISDIR(st.st_mode)) {
        printf("d %o 0 %zu\n", (unsigned)(st.st_mode & 0777), nl);
        fwrite(name, 1, nl, stdout);
        DIR *d = opendir(path);
        if (!d)
            fail(path, strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *child_path, *child_name;
            if (asprintf(&child_path, "%s/%s", path, e->d_name) < 0 || asprintf(&child_name, "%s/%s", name, e->d_name) < 0)
                fail(path, "out of memory");
            send_entry(child_path, child_name);
            free(child_path);
            free(child_name);
        }
        closedir(d);
    } else
        fail(path, "not a regular file or directory (symlinks and devices are not copied)");
    if (ferror(stdout))
        fail(path, "write error");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qfile-agent FILE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        char *copy = strdup(argv[i]);
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/')
            copy[--l] = 0;
        const char *base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
        if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
            fail(argv[i], "cannot copy this path (name it by its directory)");
        send_entry(argv[i], base);
        free(copy);
    }
    printf("end\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
