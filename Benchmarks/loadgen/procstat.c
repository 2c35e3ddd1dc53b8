#include "procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_PROCESSES = 4096 };

struct proc_entry {
    int pid, ppid;
    long rss_kib;
    double cpu_s;
};

/* A stat file of /proc into `text` (NUL-terminated); -1 when it cannot be read. */
static int read_stat_file(const char *path, char *text, size_t size) {
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t length = fread(text, 1, size - 1, file);
    fclose(file);
    text[length] = 0;
    return 0;
}

/* pid, parent and utime+stime from /proc/PID/stat (the command name may hold spaces and parens). */
static int read_stat(int pid, struct proc_entry *entry) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (read_stat_file(path, text, sizeof text) != 0)
        return -1;
    char *after_name = strrchr(text, ')');
    if (!after_name)
        return -1;
    char state;
    unsigned long utime, stime;
    /* Fields 3..15: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(after_name + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &entry->ppid, &utime,
               &stime) != 4)
        return -1;
    entry->pid = pid;
    entry->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

/* The name (comm) and utime+stime of thread `tid` of process `pid`. */
static int read_thread(int pid, int tid, struct loop_thread *thread) {
    char path[96], text[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    if (read_stat_file(path, text, sizeof text) != 0)
        return -1;
    char *name = strchr(text, '('), *after_name = strrchr(text, ')');
    if (!name || !after_name || after_name < name)
        return -1;
    unsigned long utime, stime;
    if (sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    snprintf(thread->name, sizeof thread->name, "%.*s", (int)(after_name - name - 1), name + 1);
    thread->pid = pid;
    thread->tid = tid;
    thread->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

/* Adds the event-loop threads of `pid` to the sample. */
static void sample_loop_threads(int pid, struct proc_sample *sample) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks)
        return;
    struct dirent *dirent;
    while ((dirent = readdir(tasks)) && sample->loop_count < MAX_LOOP_THREADS) {
        struct loop_thread *thread = &sample->loops[sample->loop_count];
        if (isdigit((unsigned char)dirent->d_name[0]) && read_thread(pid, atoi(dirent->d_name), thread) == 0 &&
            strncmp(thread->name, "NIO-ELT-", 8) == 0)
            sample->loop_count++;
    }
    closedir(tasks);
}

static long read_rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return 0;
    long rss = 0;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmRSS: %ld kB", &rss) == 1)
            break;
    fclose(file);
    return rss;
}

static int list_processes(struct proc_entry *entries) {
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int count = 0;
    struct dirent *dirent;
    while ((dirent = readdir(proc)) && count < MAX_PROCESSES)
        if (isdigit((unsigned char)dirent->d_name[0]) && read_stat(atoi(dirent->d_name), &entries[count]) == 0)
            count++;
    closedir(proc);
    return count;
}

static int in_tree(const struct proc_entry *entries, int count, int pid, const int *roots, int root_count) {
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        for (int r = 0; r < root_count; r++)
            if (roots[r] == pid)
                return 1;
        int parent = 0;
        for (int i = 0; i < count; i++)
            if (entries[i].pid == pid) {
                parent = entries[i].ppid;
                break;
            }
        pid = parent;
    }
    return 0;
}

struct proc_sample proc_sample_trees(const int *roots, int root_count) {
    struct proc_sample sample = { 0 };
    if (root_count == 0)
        return sample;
    struct proc_entry *entries = calloc(MAX_PROCESSES, sizeof *entries);
    if (!entries)
        return sample;
    int count = list_processes(entries);
    for (int i = 0; i < count; i++)
        if (in_tree(entries, count, entries[i].pid, roots, root_count)) {
            sample.rss_kib += read_rss_kib(entries[i].pid);
            sample.cpu_s += entries[i].cpu_s;
            sample.processes++;
            sample_loop_threads(entries[i].pid, &sample);
        }
    free(entries);
    return sample;
}
