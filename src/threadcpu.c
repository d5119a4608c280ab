/* threadcpu.c -- the CPU time of this process's threads by name (see
 * threadcpu.h): each /proc/self/task/<tid>/comm compared with the name,
 * and fields 14 and 15 (utime, stime, in clock ticks) of its stat read. */
#define _POSIX_C_SOURCE 200809L
#include "threadcpu.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "leadscore/error.h"

/* The first line of /proc/self/task/<tid>/<file> into buf; 0 or -1. */
static int read_line(const char *tid, const char *file, char *buf, size_t cap)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/%s", tid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    return ok ? 0 : -1;
}

/* 1 when thread tid's name is name. */
static int named(const char *tid, const char *name)
{
    char comm[64];
    if (read_line(tid, "comm", comm, sizeof comm) != 0)
        return 0;
    comm[strcspn(comm, "\n")] = '\0';
    return strcmp(comm, name) == 0;
}

/* Thread tid's utime + stime, in clock ticks; 0 when it cannot be read. */
static unsigned long long ticks_of(const char *tid)
{
    char line[1024];
    unsigned long long utime, stime;
    /* the name (field 2) is in parentheses and may hold spaces: count
     * the fields from the last ')' */
    const char *p = read_line(tid, "stat", line, sizeof line) == 0 ? strrchr(line, ')') : NULL;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

int threadcpu_seconds(const char *name, double *seconds)
{
    *seconds = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return LS_EUNAVAIL;
    unsigned long long ticks = 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !named(e->d_name, name))
            continue;
        ticks += ticks_of(e->d_name);
        found = 1;
    }
    closedir(d);
    long hz = sysconf(_SC_CLK_TCK);
    *seconds = hz > 0 ? (double)ticks / (double)hz : 0;
    return found ? LS_OK : LS_ENOTFOUND;
}
