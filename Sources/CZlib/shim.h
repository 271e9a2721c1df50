// Umbrella for zlib (zlib1g-dev): tls-bridge report reads gzip-rotated session logs through gzread.
#include <zlib.h>
