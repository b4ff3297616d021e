/* main.c: rtd's entry point (flags, signals, start-up and shutdown). Not written yet. */
#include "config.h"
int main(void)
{
    return 0;
}
