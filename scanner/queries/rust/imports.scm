; Rust imports: `use` trees are expanded into one path per leaf in code; `mod x;` without a body names a
; child module file; `extern crate` names a crate.

(use_declaration argument: (_) @import.rust_use)
(mod_item name: (identifier) @import.module !body)
(extern_crate_declaration name: (identifier) @import.use)
