//! How async functions with typed arguments become hub methods.

use std::any::TypeId;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use signalr_protocol::{Payload, PayloadFormat, PayloadRef};
use tokio::sync::mpsc;

use super::CallContext;
use super::streaming::{IntoHubStream, ItemStreamOutput, UploadItem, UploadStream};
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

/// A parameter of a hub method: a value bound from the invocation's arguments (any
/// `DeserializeOwned` type), or an [`UploadStream`] bound from its stream ids.
///
/// Users never implement it.
pub trait HubArgument: Sized + Send + 'static {
    /// Whether the parameter is an upload stream rather than an argument.
    #[doc(hidden)]
    const IS_UPLOAD: bool;

    #[doc(hidden)]
    fn bind(source: ArgumentSource<'_>) -> Option<Self>;
}

/// Where one parameter comes from (not part of the stable API).
#[doc(hidden)]
pub enum ArgumentSource<'a> {
    /// An element of the arguments array.
    Value(PayloadRef<'a>),
    /// The buffer of an upload stream.
    Upload(UploadBuffer),
}

/// The receiving end of one upload's buffer (not part of the stable API).
#[doc(hidden)]
pub struct UploadBuffer {
    pub(crate) items: mpsc::Receiver<UploadItem>,
    /// Whether binding failures show their detail (detailed errors).
    pub(crate) detailed: bool,
}

impl<T: DeserializeOwned + Send + 'static> HubArgument for T {
    const IS_UPLOAD: bool = false;

    fn bind(source: ArgumentSource<'_>) -> Option<Self> {
        match source {
            ArgumentSource::Value(value) => value.decode().ok(),
            ArgumentSource::Upload(_) => None,
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> HubArgument for UploadStream<T> {
    const IS_UPLOAD: bool = true;

    fn bind(source: ArgumentSource<'_>) -> Option<Self> {
        match source {
            ArgumentSource::Upload(buffer) => Some(UploadStream::new(buffer)),
            ArgumentSource::Value(_) => None,
        }
    }
}

/// What a call gets from the invocation: its encoded arguments and one buffer per upload stream.
#[doc(hidden)]
pub struct CallInput {
    pub(crate) arguments: Payload,
    pub(crate) uploads: Vec<UploadBuffer>,
    pub(crate) format: PayloadFormat,
}

/// An async function usable as a hub method: `async fn(CallContext<S>, A1, A2, ...) -> R`
/// with up to eight [`HubArgument`]s (values that implement `DeserializeOwned`, or
/// [`UploadStream`]s), and `R:` [`IntoHubResult`].
///
/// `Args` only tells the implementations apart; users never name it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a hub method of a hub with state `{S}`",
    note = "a hub method is an `async fn(CallContext<S>, ...)` with up to eight arguments that \
            resolves to `Result<T, E>` (T: Serialize) or `()`",
    note = "a method that resolves to `Result<impl Stream, E>` is registered with \
            `stream_method`, not `method`"
)]
pub trait HubMethod<S, Args>: Clone + Send + Sync + 'static {
    /// How many arguments the method takes from the invocation's arguments.
    const ARITY: usize;
    /// How many upload streams the method takes.
    const UPLOADS: usize;

    #[doc(hidden)]
    fn call_erased(
        &self,
        context: CallContext<S>,
        input: CallInput,
    ) -> BoxFuture<Result<Option<Payload>, HubCallError>>;
}

/// An async function usable as a streaming hub method: like [`HubMethod`], but `R:`
/// [`IntoHubStream`]: the method resolves to a stream whose items the client receives one by one.
///
/// `Args` and `Marker` only tell the implementations apart; users never name them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a streaming hub method of a hub with state `{S}`",
    note = "a streaming hub method is an `async fn(CallContext<S>, ...)` that resolves to \
            `Result<impl Stream<Item = T>, E>` (T: Serialize, or Result<T, E2>)",
    note = "a method that resolves to a single value is registered with `method`, not \
            `stream_method`"
)]
pub trait HubStreamMethod<S, Args, Marker>: Clone + Send + Sync + 'static {
    /// How many arguments the method takes from the invocation's arguments.
    const ARITY: usize;
    /// How many upload streams the method takes.
    const UPLOADS: usize;

    #[doc(hidden)]
    fn call_erased(
        &self,
        context: CallContext<S>,
        input: CallInput,
    ) -> BoxFuture<Result<ItemStreamOutput, HubCallError>>;
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

/// Binds the next parameter from the arguments or the uploads, as its type asks.
fn bind_next<'a, A: HubArgument>(
    values: &mut impl Iterator<Item = PayloadRef<'a>>,
    uploads: &mut impl Iterator<Item = UploadBuffer>,
) -> Result<A, String> {
    let source = if A::IS_UPLOAD {
        uploads.next().map(ArgumentSource::Upload)
    } else {
        values.next().map(ArgumentSource::Value)
    };
    source
        .and_then(A::bind)
        .ok_or_else(|| BINDING_FAILED.to_owned())
}

macro_rules! impl_hub_methods {
    ($($arg:ident),*) => {
        impl_hub_methods!(@bind [] HubMethod<S, ($($arg,)*)>, R: IntoHubResult,
            Option<Payload>, into_hub_result; $($arg),*);
        impl_hub_methods!(@bind [Marker] HubStreamMethod<S, ($($arg,)*), Marker>,
            R: IntoHubStream<Marker>, ItemStreamOutput, into_hub_stream; $($arg),*);
    };
    (@bind [$($marker:ident)?] $trait:ident<$($params:ty),*>, R: $output_trait:path,
        $output:ty, $convert:ident; $($arg:ident),*) => {
        impl<S, F, Fut, R, $($marker,)? $($arg,)*> $trait<$($params),*> for F
        where
            S: Clone + Send + Sync + 'static,
            F: Fn(CallContext<S>, $($arg,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: $output_trait,
            $($arg: HubArgument,)*
        {
            const ARITY: usize = 0 $(+ (!<$arg as HubArgument>::IS_UPLOAD) as usize)*;
            const UPLOADS: usize = 0 $(+ (<$arg as HubArgument>::IS_UPLOAD as usize))*;

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call_erased(
                &self,
                context: CallContext<S>,
                input: CallInput,
            ) -> BoxFuture<Result<$output, HubCallError>> {
                let CallInput { arguments, uploads, format } = input;
                let bound = (|| {
                    let values = arguments.elements().map_err(|_| BINDING_FAILED.to_owned())?;
                    if values.len() != Self::ARITY {
                        return Err(format!(
                            "Invocation provides {} argument(s) but target expects {}.",
                            values.len(),
                            Self::ARITY
                        ));
                    }
                    let mut values = values.into_iter();
                    let mut uploads = uploads.into_iter();
                    Ok(($(bind_next::<$arg>(&mut values, &mut uploads)?,)*))
                })();
                let ($($arg,)*) = match bound {
                    Ok(values) => values,
                    Err(detail) => return Box::pin(async move { Err(HubCallError::Binding(detail)) }),
                };
                let future = (self)(context, $($arg,)*);
                Box::pin(async move {
                    future.await.$convert(format).map_err(HubCallError::Method)
                })
            }
        }
    };
}

impl_hub_methods!();
impl_hub_methods!(A1);
impl_hub_methods!(A1, A2);
impl_hub_methods!(A1, A2, A3);
impl_hub_methods!(A1, A2, A3, A4);
impl_hub_methods!(A1, A2, A3, A4, A5);
impl_hub_methods!(A1, A2, A3, A4, A5, A6);
impl_hub_methods!(A1, A2, A3, A4, A5, A6, A7);
impl_hub_methods!(A1, A2, A3, A4, A5, A6, A7, A8);

/// A hub method with its argument types erased, as the method table stores it.
pub(crate) type ErasedMethod<S, Output> =
    Box<dyn Fn(CallContext<S>, CallInput) -> BoxFuture<Result<Output, HubCallError>> + Send + Sync>;

/// Erases the argument types of a hub method.
pub(crate) fn erase<S, Args, M: HubMethod<S, Args>>(method: M) -> ErasedMethod<S, Option<Payload>> {
    Box::new(move |context, input| method.call_erased(context, input))
}

/// Erases the argument types of a streaming hub method.
pub(crate) fn erase_stream<S, Args, Marker, M: HubStreamMethod<S, Args, Marker>>(
    method: M,
) -> ErasedMethod<S, ItemStreamOutput> {
    Box::new(move |context, input| method.call_erased(context, input))
}
