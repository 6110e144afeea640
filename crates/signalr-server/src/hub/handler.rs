//! How async functions with typed arguments become hub methods.

use std::any::TypeId;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use signalr_protocol::{Payload, PayloadFormat};

use super::CallContext;
use crate::error::HubError;

/// A boxed future that can move between threads.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The value a hub method's future resolves to.
///
/// Implemented for `()` (a void method) and for `Result<T, E>` where `T: Serialize` and `E`
/// converts into [`HubError`]; `Result<(), E>` is void too.
pub trait IntoHubResult: Send + 'static {
    /// Encodes the value in the connection's format.
    ///
    /// # Errors
    /// The method's error, or an encoding failure.
    fn into_hub_result(self, format: PayloadFormat) -> Result<Option<Payload>, HubError>;
}

impl IntoHubResult for () {
    fn into_hub_result(self, _: PayloadFormat) -> Result<Option<Payload>, HubError> {
        Ok(None)
    }
}

impl<T, E> IntoHubResult for Result<T, E>
where
    T: Serialize + Send + 'static,
    E: Into<HubError> + Send + 'static,
{
    fn into_hub_result(self, format: PayloadFormat) -> Result<Option<Payload>, HubError> {
        let value = self.map_err(Into::into)?;
        if TypeId::of::<T>() == TypeId::of::<()>() {
            return Ok(None);
        }
        let payload = Payload::encode(format, &value)
            .map_err(|error| HubError::typed("SerializationException", error.to_string()))?;
        Ok(Some(payload))
    }
}

/// An async function usable as a hub method: `async fn(CallContext<S>, A1, A2, ...) -> R`
/// with up to eight arguments that implement `DeserializeOwned`, and `R:` [`IntoHubResult`].
///
/// `Args` only tells the implementations apart; users never name it.
pub trait HubMethod<S, Args>: Clone + Send + Sync + 'static {
    /// How many arguments the method takes from the invocation.
    const ARITY: usize;

    #[doc(hidden)]
    fn call_erased(
        &self,
        context: CallContext<S>,
        arguments: Payload,
        format: PayloadFormat,
    ) -> BoxFuture<Result<Option<Payload>, HubCallError>>;
}

/// Why a call through [`HubMethod`] failed (not part of the public API's stable surface).
#[doc(hidden)]
#[derive(Debug)]
pub enum HubCallError {
    /// Argument binding failed with this detail.
    Binding(String),
    /// The method failed.
    Method(HubError),
}

const BINDING_FAILED: &str = "Error binding arguments. Make sure that the types of the provided \
                              values match the types of the hub method being invoked.";

macro_rules! impl_hub_method {
    ($count:expr; $($arg:ident),*) => {
        impl<S, F, Fut, R, $($arg,)*> HubMethod<S, ($($arg,)*)> for F
        where
            S: Clone + Send + Sync + 'static,
            F: Fn(CallContext<S>, $($arg,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHubResult,
            $($arg: DeserializeOwned + Send + 'static,)*
        {
            const ARITY: usize = $count;

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call_erased(
                &self,
                context: CallContext<S>,
                arguments: Payload,
                format: PayloadFormat,
            ) -> BoxFuture<Result<Option<Payload>, HubCallError>> {
                let bound = (|| {
                    let elements = arguments.elements().map_err(|_| BINDING_FAILED.to_owned())?;
                    if elements.len() != $count {
                        return Err(format!(
                            "Invocation provides {} argument(s) but target expects {}.",
                            elements.len(),
                            $count
                        ));
                    }
                    let mut elements = elements.into_iter();
                    Ok(($(
                        elements
                            .next()
                            .expect("count checked")
                            .decode::<$arg>()
                            .map_err(|_| BINDING_FAILED.to_owned())?,
                    )*))
                })();
                let ($($arg,)*) = match bound {
                    Ok(values) => values,
                    Err(detail) => return Box::pin(async move { Err(HubCallError::Binding(detail)) }),
                };
                let future = (self)(context, $($arg,)*);
                Box::pin(async move {
                    future.await.into_hub_result(format).map_err(HubCallError::Method)
                })
            }
        }
    };
}

impl_hub_method!(0;);
impl_hub_method!(1; A1);
impl_hub_method!(2; A1, A2);
impl_hub_method!(3; A1, A2, A3);
impl_hub_method!(4; A1, A2, A3, A4);
impl_hub_method!(5; A1, A2, A3, A4, A5);
impl_hub_method!(6; A1, A2, A3, A4, A5, A6);
impl_hub_method!(7; A1, A2, A3, A4, A5, A6, A7);
impl_hub_method!(8; A1, A2, A3, A4, A5, A6, A7, A8);

/// A hub method with its argument types erased, as the method table stores it.
pub(crate) type ErasedMethod<S> = Box<
    dyn Fn(
            CallContext<S>,
            Payload,
            PayloadFormat,
        ) -> BoxFuture<Result<Option<Payload>, HubCallError>>
        + Send
        + Sync,
>;

/// Erases the argument types of a hub method.
pub(crate) fn erase<S, Args, M: HubMethod<S, Args>>(method: M) -> ErasedMethod<S> {
    Box::new(move |context, arguments, format| method.call_erased(context, arguments, format))
}
