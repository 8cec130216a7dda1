/* The file-copy stream of qubes.Filecopy (docs/qrexec.md): entries with a text header line, then "end\n".
 *   f MODE SIZE NAMELEN\n NAME DATA      a regular file (MODE octal permission bits, SIZE and NAMELEN decimal)
 *   d MODE 0 NAMELEN\n NAME              a directory, sent before what it holds
 * NAME is a relative path ("dir/file"); the receiver checks every component. */
#ifndef QFILE_H
#define QFILE_H
#define QFILE_MAX_NAME 4096
#define QFILE_MAX_HEADER 96
#endif
