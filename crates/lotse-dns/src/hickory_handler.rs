//! hickory-server's side: TCP (and, for comparison, hickory's own UDP path) hand each request
//! to [`Core`] and send back what it encodes.

use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::op::{Header, HeaderCounts, Message, MessageType, Metadata, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::respond::Transport;
use crate::serve::Core;

pub struct Handler {
    pub core: Arc<Core>,
}

#[async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        let failed = || {
            let mut metadata = Metadata::new(
                request.metadata.id,
                MessageType::Response,
                request.metadata.op_code,
            );
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        };
        let Some(bytes) = self.core.respond(request.as_slice(), transport).await else {
            return failed();
        };
        // Our reply, decoded again so hickory can frame and send it.
        let Ok(reply) = Message::from_vec(&bytes) else {
            return failed();
        };
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = reply.edns.as_ref() {
            builder.edns(edns);
        }
        let response = builder.build(
            reply.metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot send a DNS reply");
                failed()
            }
        }
    }
}
