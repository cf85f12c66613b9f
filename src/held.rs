//! A reply whose body holds something until the body is dropped: after its last byte went
//! out, or when the client left. One wrapper for each thing a request holds while its reply
//! is sent: its place on its connection (`server`), its place in flight and its reserved
//! body bytes (`pipeline::shed`, through `app`). Wrapping is free of allocation: the held
//! value moves from the future into the body when the reply's head is ready.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// A service's reply future; its reply's body gets `held` (when there is one).
    pub struct HoldUntilSent<F, G> {
        #[pin]
        inner: F,
        held: Option<G>,
    }
}

impl<F, G> HoldUntilSent<F, G> {
    pub fn new(inner: F, held: Option<G>) -> Self {
        Self { inner, held }
    }
}

impl<F, B, E, G> Future for HoldUntilSent<F, G>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<Holding<B, G>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = std::task::ready!(this.inner.poll(cx))?;
        let held = this.held.take();
        Poll::Ready(Ok(resp.map(|inner| Holding { inner, _held: held })))
    }
}

pin_project_lite::pin_project! {
    /// A reply body and what its request holds, let go when the body is dropped.
    pub struct Holding<B, G> {
        #[pin]
        inner: B,
        _held: Option<G>,
    }
}

impl<B: http_body::Body, G> http_body::Body for Holding<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;

    #[tokio::test]
    async fn what_a_reply_holds_is_let_go_when_its_body_is_dropped() {
        let held = Arc::new(());
        let fut = HoldUntilSent::new(
            std::future::ready(Ok::<_, ()>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"hi"),
            )))),
            Some(Arc::clone(&held)),
        );
        let resp = fut.await.unwrap();
        assert_eq!(Arc::strong_count(&held), 2, "held by the body");
        let body = resp.into_body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(2));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hi");
        assert_eq!(Arc::strong_count(&held), 1, "let go with the body");
    }
}
