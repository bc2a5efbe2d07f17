/*
 * fault.h - fault points for the durability tests: in a build made with -DCF_FAULT_POINTS (make
 * faults, build-faults/), CF_FAULT(name) kills the process on the spot when CERTFLEET_FAULT names
 * that point, as a crash would; in every other build it is nothing at all.
 */
#ifndef CF_FAULT_H
#define CF_FAULT_H

#ifdef CF_FAULT_POINTS
void cf_fault_point(const char *name);
#define CF_FAULT(name) cf_fault_point(name)
#else
#define CF_FAULT(name) ((void)0)
#endif

#endif
