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

/// A failed `client_write`. openraft answers "forward to leader" both when it refuses a
/// proposal outright and when it truncates a proposed entry that conflicts with a new
/// leader's log; the entry may then still be committed, by another node that holds it and
/// wins a later election (a simulated seed did exactly that). The two cannot be told apart,
/// so neither is "certainly not applied": both are [`ServerError::LeadershipLost`].
pub(crate) fn classify_write(
    e: &RaftError<NodeId, ClientWriteError<NodeId, openraft::BasicNode>>,
) -> ServerError {
    match classify(e) {
        ServerError::NotLeader | ServerError::NoLeader => ServerError::LeadershipLost,
        other => other,
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

#[cfg(test)]
mod tests {
    use lotse_consensus::openraft::error::{ClientWriteError, Fatal, ForwardToLeader, RaftError};

    use super::{classify, classify_write};
    use crate::ServerError;

    #[test]
    fn a_write_openraft_gave_up_on_is_never_certainly_unapplied() {
        let to_leader = |leader_id| {
            RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
                leader_id,
                leader_node: None,
            }))
        };
        // For a read or a check, "forward" is a clean refusal...
        assert_eq!(classify(&to_leader(Some(2))), ServerError::NotLeader);
        assert_eq!(classify(&to_leader(None)), ServerError::NoLeader);
        // ...for a write it may follow a truncated proposal another leader still commits.
        assert_eq!(
            classify_write(&to_leader(Some(2))),
            ServerError::LeadershipLost
        );
        assert_eq!(
            classify_write(&to_leader(None)),
            ServerError::LeadershipLost
        );
        let stopped: RaftError<u64, ClientWriteError<u64, _>> = RaftError::Fatal(Fatal::Stopped);
        assert_eq!(classify_write(&stopped), ServerError::ShuttingDown);
        assert_eq!(
            ServerError::LeadershipLost.to_string(),
            "leadership lost while committing log"
        );
    }
}
