//! The client's request while the exchange with the origin runs.
//!
//! actix-web routes a request by mutating it in place, which panics if
//! another handle to the same `HttpRequest` is alive. So the middleware
//! keeps the one `ServiceRequest` in a cell while the core decides, hands
//! it to the inner service only when the core calls the origin, and takes
//! the `HttpRequest` back from the inner service's response to answer with.

use crate::body::FromActix;
use crate::convert::{headers_to_actix, response_from_actix};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpRequest};
use std::cell::RefCell;
use std::rc::Rc;

/// Where the client's request is.
enum State {
    /// Not sent to the inner service (yet).
    Waiting(ServiceRequest),
    /// With the inner service.
    Sent,
    /// The inner service answered; its response gave the request back.
    Answered(HttpRequest),
    /// The inner service failed with this error (it keeps the request).
    Failed(Error),
}

/// The error the core sees when the inner service fails; the inner
/// service's own error stays in the [`Held`] request for the middleware to
/// return.
#[derive(Debug)]
pub(crate) struct OriginFailed;

/// What the origin function gives the core.
pub(crate) type OriginResult<B> = Result<http::Response<FromActix<B>>, OriginFailed>;

/// A shared handle on the client's request; see the [module docs](self).
#[derive(Clone)]
pub(crate) struct Held(Rc<RefCell<State>>);

/// What became of the request once the exchange is over.
pub(crate) enum Handoff {
    /// Not sent: answer with it.
    Unsent(ServiceRequest),
    /// Sent and answered: answer with the request the response gave back.
    Answered(HttpRequest),
    /// The inner service failed with this error.
    Failed(Error),
    /// Taken by an exchange that did not finish.
    Lost,
}

impl Held {
    pub(crate) fn new(req: ServiceRequest) -> Self {
        Self(Rc::new(RefCell::new(State::Waiting(req))))
    }

    /// The origin for the core: sends the request, with the headers the
    /// core chose (its own validators instead of the client's
    /// preconditions), to `service`. Only the first call sends anything.
    pub(crate) async fn send<S, B>(self, service: Rc<S>, head: http::Request<()>) -> OriginResult<B>
    where
        S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
        B: actix_web::body::MessageBody + 'static,
    {
        let State::Waiting(mut req) = self.0.replace(State::Sent) else {
            return Err(OriginFailed);
        };
        *req.headers_mut() = headers_to_actix(head.headers());
        match service.call(req).await {
            Ok(response) => {
                let (req, response) = response.into_parts();
                self.0.replace(State::Answered(req));
                Ok(response_from_actix(response))
            }
            Err(error) => {
                self.0.replace(State::Failed(error));
                Err(OriginFailed)
            }
        }
    }

    /// A handle on the request for a response sent while the request itself
    /// waits for a background refresh: only to be used once the refresh
    /// waits for that response to be sent (see the module docs).
    pub(crate) fn waiting_request(&self) -> Option<HttpRequest> {
        match &*self.0.borrow() {
            State::Waiting(req) => Some(req.request().clone()),
            _ => None,
        }
    }

    /// Takes the request out, once the exchange is over.
    pub(crate) fn finish(self) -> Handoff {
        match self.0.replace(State::Sent) {
            State::Waiting(req) => Handoff::Unsent(req),
            State::Answered(req) => Handoff::Answered(req),
            State::Failed(error) => Handoff::Failed(error),
            State::Sent => Handoff::Lost,
        }
    }
}
