#ifndef LOADGEN_OPTIONS_H
#define LOADGEN_OPTIONS_H

#include <stdio.h>

#include "loadgen.h"

/* Fills opt from argv (mode first, then --name value pairs); prints the problem and returns -1. */
int options_parse(struct options *opt, int argc, char **argv);
void options_usage(FILE *out);

#endif
