//! Maps openraft's errors onto [`ServerError`]: a missing leader is Consul's "No cluster leader";
//! anything fatal is a raft error.

use std::fmt::Debug;

use lotse_consensus::openraft;
use lotse_consensus::NodeId;
use openraft::error::{ClientWriteError, RaftError};

use crate::ServerError;

/// Errors whose "who is the leader" openraft can tell.
pub(crate) trait LeaderHint {
    /// `Some(leader)` if this is "not the leader" (the leader may be unknown: `Some(None)`).
    fn forward_to(&self) -> Option<Option<NodeId>>;
}

impl LeaderHint for ClientWriteError<NodeId, openraft::BasicNode> {
    fn forward_to(&self) -> Option<Option<NodeId>> {
        match self {
            ClientWriteError::ForwardToLeader(f) => Some(f.leader_id),
            _ => None,
        }
    }
}

impl LeaderHint for openraft::error::CheckIsLeaderError<NodeId, openraft::BasicNode> {
    fn forward_to(&self) -> Option<Option<NodeId>> {
        match self {
            openraft::error::CheckIsLeaderError::ForwardToLeader(f) => Some(f.leader_id),
            _ => None,
        }
    }
}

pub(crate) fn classify<E: LeaderHint + Debug + std::fmt::Display>(
    e: &RaftError<NodeId, E>,
) -> ServerError {
    match e {
        RaftError::APIError(api) => match api.forward_to() {
            Some(None) => ServerError::NoLeader,
            Some(Some(_)) => ServerError::NotLeader,
            None => ServerError::Raft(api.to_string()),
        },
        RaftError::Fatal(f) => {
            if matches!(f, openraft::error::Fatal::Stopped) {
                ServerError::ShuttingDown
            } else {
                ServerError::Raft(f.to_string())
            }
        }
    }
}
