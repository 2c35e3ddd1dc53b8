/* The server's footprint from /proc: resident memory and CPU time summed over a set of processes,
 * each given by its pid and taken with all its descendants (nginx workers, ws4redis --processes). */
#ifndef LOADGEN_PROCSTAT_H
#define LOADGEN_PROCSTAT_H

struct proc_sample {
    long rss_kib;
    double cpu_s;
    int processes;
};

struct proc_sample proc_sample_trees(const int *roots, int root_count);

#endif
