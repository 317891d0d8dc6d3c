//! `#[ktest]`: marks a function as an in-kernel test. The test is placed
//! in the `keel_tests` link section, so tests from every crate linked into
//! a kernel image are found at run time without a central list.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, parse_macro_input};

/// Register a function `fn name()` or `fn name() -> keel_core::ktest::TestResult`
/// as an in-kernel test, run by `keel.test=...` on the boot command line.
#[proc_macro_attribute]
pub fn ktest(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[ktest] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let func = parse_macro_input!(item as ItemFn);
    if !func.sig.inputs.is_empty() || func.sig.asyncness.is_some() {
        return syn::Error::new_spanned(
            &func.sig,
            "a #[ktest] function takes no arguments and is not async",
        )
        .to_compile_error()
        .into();
    }
    let name = &func.sig.ident;
    let entry = format_ident!("__KEEL_KTEST_{}", name.to_string().to_uppercase());
    quote! {
        #func

        #[used]
        #[unsafe(link_section = "keel_tests")]
        #[doc(hidden)]
        static #entry: ::keel_core::ktest::KernelTest = ::keel_core::ktest::KernelTest {
            name: concat!(module_path!(), "::", stringify!(#name)),
            run: || ::keel_core::ktest::IntoTestResult::into_test_result(#name()),
        };
    }
    .into()
}
