//! A component that does not implement the mapper world: it exports `greet` instead of
//! `describe` and `map-mutation`. The host must refuse it at load, naming the file.

// wit-bindgen's generated ABI glue needs `unsafe` and declares `pub` items in this private
// module; both lints are relaxed here and nowhere else.
#[allow(unsafe_code, unreachable_pub)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package pakaura-test:wrong-world;

            world greeter {
                export greet: func() -> string;
            }
        ",
    });

    use super::Greeter;
    export!(Greeter with_types_in self);
}

struct Greeter;

impl bindings::Guest for Greeter {
    fn greet() -> String {
        "hello, I am not a mapper".to_owned()
    }
}
