/* The server's footprint from /proc: resident memory and CPU time summed over a set of processes,
 * each given by its pid and taken with all its descendants (nginx workers, ws4redis --processes). */
#ifndef LOADGEN_PROCSTAT_H
#define LOADGEN_PROCSTAT_H

enum { MAX_LOOP_THREADS = 64 };

/* One event-loop thread (SwiftNIO names them NIO-ELT-<group>-#<index>), for the CPU split between
   loops: a target whose work lands on one loop shows it. */
struct loop_thread {
    int pid, tid;
    char name[32];
    double cpu_s;
};

struct proc_sample {
    long rss_kib;
    double cpu_s;
    int processes;
    struct loop_thread loops[MAX_LOOP_THREADS];
    int loop_count;
};

struct proc_sample proc_sample_trees(const int *roots, int root_count);

#endif
