; C and C++ includes: `#include "x.h"` is local, `#include <x.h>` is a system header.

(preproc_include path: (string_literal) @import.include_local)
(preproc_include path: (system_lib_string) @import.include_system)
