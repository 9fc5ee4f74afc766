//! The two macros of the registry: [`define_category!`](crate::define_category) declares a
//! category (its trait object, context, linkme slice and description), and
//! [`register!`](crate::register) registers a builtin implementation next to its type.
//!
//! Adding a category is one `define_category!` call, one arm in `register!`, and one field in
//! [`crate::registries::Registries`].

/// Declares a registry category: a unit type implementing [`crate::registry::Category`], the
/// linkme slice its builtins register into, and the blanket
/// [`crate::registry::Implementation`] impl for every implementor of its trait.
///
/// The trait must have a constructor `fn create(ctx: &Context) -> Result<Self, CreateError>
/// where Self: Sized`.
#[macro_export]
macro_rules! define_category {
    (
        $(#[$meta:meta])*
        $vis:vis struct $category:ident {
            name: $name:literal,
            description: $description:literal,
            trait: $trait:path,
            context: $context:ty,
            validation_context: $validation:expr,
            slice: $slice:ident $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $category;

        #[doc = concat!("The builtin `", $name, "` implementations linked into this binary (a linkme slice; order unspecified).")]
        #[$crate::linkme::distributed_slice]
        #[linkme(crate = $crate::linkme)]
        pub static $slice: [$crate::registry::Registration<$category>];

        impl $crate::registry::Category for $category {
            type Instance = dyn $trait;
            type Context = $context;
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            fn builtin_registrations() -> &'static [$crate::registry::Registration<Self>] {
                &$slice
            }
            fn validation_context() -> $context {
                $validation
            }
        }

        impl<T: $trait + 'static> $crate::registry::Implementation<$category> for T {
            fn create_boxed(
                ctx: &$context,
            ) -> ::std::result::Result<::std::boxed::Box<dyn $trait>, $crate::registry::CreateError> {
                ::std::result::Result::Ok(::std::boxed::Box::new(<T as $trait>::create(ctx)?))
            }
        }
    };
}

/// Registers a builtin implementation under a name, next to its type: the Rust form of the seed's
/// `@EndpointFactory.register("chat")`.
///
/// ```ignore
/// aiperf_core::register!(endpoint "chat" => ChatEndpoint, "OpenAI chat completions (/v1/chat/completions)");
/// ```
///
/// The crate and version recorded are those of the crate invoking the macro.
#[macro_export]
macro_rules! register {
    (endpoint $name:literal => $ty:ty, $description:literal) => {
        $crate::__register_in!(
            $crate::endpoint::AIPERF_ENDPOINTS,
            $crate::endpoint::EndpointCategory,
            $name,
            $ty,
            $description
        );
    };
    (transport $name:literal => $ty:ty, $description:literal) => {
        $crate::__register_in!(
            $crate::transport::AIPERF_TRANSPORTS,
            $crate::transport::TransportCategory,
            $name,
            $ty,
            $description
        );
    };
}

/// The category-independent half of [`register!`](crate::register); not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_in {
    ($slice:path, $category:ty, $name:literal, $ty:ty, $description:literal) => {
        const _: () = {
            #[$crate::linkme::distributed_slice($slice)]
            #[linkme(crate = $crate::linkme)]
            static REGISTRATION: $crate::registry::Registration<$category> =
                $crate::registry::Registration::of::<$ty>(
                    $name,
                    stringify!($ty),
                    env!("CARGO_PKG_NAME"),
                    env!("CARGO_PKG_VERSION"),
                    $description,
                    0,
                );
        };
    };
}
