/*
 * qubes-vmexec: the qubes.VMExec service. Its argument (QREXEC_SERVICE_ARGUMENT) is a command line encoded as Qubes
 * does: words separated by '+', each word made of [A-Za-z0-9._-] where "--" stands for '-' and "-HH" (upper-case hex)
 * for the byte HH; any other '-' is an error. The decoded words are run directly (no shell).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WORDS 256

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one word in place; returns 0, or -1 when it is not a valid encoding. */
static int decode(char *word)
{
    char *out = word;
    for (const char *p = word; *p; p++) {
        char c = *p;
        if (c == '-') {
            if (p[1] == '-') {
                *out++ = '-';
                p++;
            } else if (hex(p[1]) >= 0 && hex(p[2]) >= 0) {
                int b = hex(p[1]) * 16 + hex(p[2]);
                if (b == 0)
                    return -1;
                *out++ = (char)b;
                p += 2;
            } else
                return -1;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_')
            *out++ = c;
        else
            return -1;
    }
    *out = 0;
    return 0;
}

int main(void)
{
    const char *arg = getenv("QREXEC_SERVICE_ARGUMENT");
    if (!arg || !*arg) {
        fprintf(stderr, "qubes.VMExec: no command (the argument is the encoded command line)\n");
        return 127;
    }
    char *copy = strdup(arg);
    char *words[MAX_WORDS + 1];
    int n = 0;
    for (char *save = NULL, *w = strtok_r(copy, "+", &save); w; w = strtok_r(NULL, "+", &save)) {
        if (n == MAX_WORDS || decode(w) < 0) {
            fprintf(stderr, "qubes.VMExec: invalid argument encoding\n");
            return 127;
        }
        words[n++] = w;
    }
    if (n == 0) {
        fprintf(stderr, "qubes.VMExec: no command\n");
        return 127;
    }
    words[n] = NULL;
    execvp(words[0], words);
    fprintf(stderr, "qubes.VMExec: %s: %s\n", words[0], strerror(errno));
    return 127;
}
