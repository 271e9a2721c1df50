// posix_spawn helpers glibc declares only under _GNU_SOURCE, which Swift's Glibc module leaves out.
#ifndef TB_CBRIDGESPAWN_H
#define TB_CBRIDGESPAWN_H
#include <spawn.h>

// The child closes every descriptor from `from` up (glibc 2.34+), so a spawned process inherits
// none of the bridge's sockets whatever their close-on-exec flag. Returns 0 or an errno value.
int tb_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);
#endif
