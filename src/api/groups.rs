//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroups, DeleteGroups. The decisions are the group coordinator's (`crate::group`); this
//! module only maps the wire versions. Fields a version lacks keep their defaults, or encoding
//! fails.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, ClientInfo, errors};
use crate::group::{GroupState, JoinRequest};
use crate::security::acl::{Operation, ResourceType};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// The coordinator of one key: for a group, the leader of its `__consumer_offsets`
/// partition; for a transactional id, the leader of its `__transaction_state` partition.
async fn coordinator_for(
    api: &Api,
    client: &ClientInfo,
    key: &str,
    key_type: i8,
) -> (i16, i32, String, i32) {
    let listener = client.listener(&api.config);
    // DESCRIBE on the key, before anything about it is looked up.
    let refused = match key_type {
        KEY_TYPE_GROUP
            if !api.authorized(client, Operation::Describe, ResourceType::Group, key) =>
        {
            Some(ResponseError::GroupAuthorizationFailed.code())
        }
        KEY_TYPE_TRANSACTION
            if !api.authorized(
                client,
                Operation::Describe,
                ResourceType::TransactionalId,
                key,
            ) =>
        {
            Some(ResponseError::TransactionalIdAuthorizationFailed.code())
        }
        _ => None,
    };
    if let Some(code) = refused {
        return (code, -1, String::new(), -1);
    }
    let broker = match key_type {
        KEY_TYPE_GROUP => api
            .groups
            .coordinator_broker(key)
            .await
            .map_err(|e| e.kafka_error_code()),
        KEY_TYPE_TRANSACTION => api
            .txn
            .coordinator_broker(key)
            .await
            .map_err(|e| e.kafka_error_code()),
        _ => Err(ResponseError::InvalidRequest.code()),
    };
    let broker = match broker {
        Ok(b) => b,
        Err(code) => return (code, -1, String::new(), -1),
    };
    // A coordinator without an endpoint on the client's listener is as good as absent to it.
    match api
        .cache
        .broker(broker)
        .and_then(|b| b.endpoint(listener).cloned())
    {
        Some(e) => (errors::NONE, broker, e.host, i32::from(e.port)),
        None => (
            ResponseError::CoordinatorNotAvailable.code(),
            -1,
            String::new(),
            -1,
        ),
    }
}

pub async fn find_coordinator(
    api: &Api,
    client: &ClientInfo,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        for key in request.coordinator_keys {
            let (error, node, host, port) =
                coordinator_for(api, client, &key, request.key_type).await;
            let mut c = Coordinator::default();
            c.key = key;
            c.error_code = error;
            c.node_id = BrokerId(node);
            c.host = s(host);
            c.port = port;
            response.coordinators.push(c);
        }
        return response;
    }
    let key_type = if version >= 1 {
        request.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let (error, node, host, port) = coordinator_for(api, client, &request.key, key_type).await;
    response.error_code = error;
    response.node_id = BrokerId(node);
    response.host = s(host);
    response.port = port;
    response
}

pub async fn join(
    api: &Api,
    header: &RequestHeader,
    client: &ClientInfo,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    if !may_read_group(api, client, &request.group_id) {
        let mut response = JoinGroupResponse::default();
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        response.generation_id = -1;
        response.member_id = request.member_id;
        // Before v7 the protocol name is not nullable.
        response.protocol_name = (version < 7).then(StrBytes::default);
        return response;
    }
    let group_instance_id = request.group_instance_id.map(|g| g.to_string());
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        require_known_member_id: version >= 4 && group_instance_id.is_none(),
        group_instance_id,
        client_id: header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: client.host(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
    };
    let result = api.groups.join(join).await;
    let mut response = JoinGroupResponse::default();
    response.error_code = errors::code_or_none(result.error.as_ref());
    response.generation_id = result.generation;
    if version >= 7 {
        response.protocol_type = result.protocol_type.map(s);
    }
    response.protocol_name = match result.protocol {
        Some(p) => Some(s(p)),
        // Before v7 the protocol name is not nullable.
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    response.leader = s(result.leader);
    response.member_id = s(result.member_id);
    response.members = result
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = s(id);
            if version >= 5 {
                m.group_instance_id = instance.map(s);
            }
            m.metadata = metadata;
            m
        })
        .collect();
    response
}

/// Membership (Join, Sync, Heartbeat, Leave) needs READ on the group.
fn may_read_group(api: &Api, client: &ClientInfo, group: &GroupId) -> bool {
    api.authorized(client, Operation::Read, ResourceType::Group, &group.0)
}

pub async fn sync(
    api: &Api,
    client: &ClientInfo,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    if !may_read_group(api, client, &request.group_id) {
        let mut response = SyncGroupResponse::default();
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let result = api
        .groups
        .sync(
            &request.group_id.0,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            assignments,
        )
        .await;
    let mut response = SyncGroupResponse::default();
    response.error_code = result
        .error
        .as_ref()
        .map_or(errors::NONE, errors::group_metadata_code);
    response.assignment = result.assignment;
    if version >= 5 {
        response.protocol_type = result.protocol_type.map(s);
        response.protocol_name = result.protocol.map(s);
    }
    response
}

pub fn heartbeat(api: &Api, client: &ClientInfo, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut response = HeartbeatResponse::default();
    if !may_read_group(api, client, &request.group_id) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    response.error_code = match api.groups.heartbeat(
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
    ) {
        Ok(()) => errors::NONE,
        Err(e) => e.kafka_error_code(),
    };
    response
}

pub async fn leave(
    api: &Api,
    client: &ClientInfo,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let mut response = LeaveGroupResponse::default();
    if !may_read_group(api, client, &request.group_id) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    if version < 3 {
        let (error, per_member) = api
            .groups
            .leave(
                &request.group_id.0,
                &[(request.member_id.to_string(), None)],
            )
            .await;
        // Before v3 one member, and the group's error or that member's is the answer.
        response.error_code = match (error, per_member.first().copied()) {
            (Err(e), _) | (Ok(()), Some(Err(e))) => e.kafka_error_code(),
            _ => errors::NONE,
        };
        return response;
    }
    let ids: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
            )
        })
        .collect();
    let (error, per_member) = api.groups.leave(&request.group_id.0, &ids).await;
    response.error_code = errors::code_or_none(error.as_ref().err());
    response.members = request
        .members
        .into_iter()
        .zip(per_member)
        .map(|(m, outcome)| {
            let mut r = MemberResponse::default();
            r.member_id = m.member_id;
            r.group_instance_id = m.group_instance_id;
            r.error_code = errors::code_or_none(outcome.as_ref().err());
            r
        })
        .collect();
    response
}

pub fn list(
    api: &Api,
    client: &ClientInfo,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let filter: Vec<String> = if version >= 4 {
        request
            .states_filter
            .iter()
            .map(|f| f.to_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    // Only classic groups exist here: a types filter without "classic" matches nothing.
    let type_ok = version < 5
        || request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    if !type_ok {
        return response;
    }
    let (error, groups) = api.groups.list();
    response.error_code = errors::code_or_none(error.as_ref());
    // DESCRIBE on the cluster lists every group; without it, the groups the client may
    // describe, the others left out (never an error).
    let every_group = api.authorized_quietly(
        client,
        Operation::Describe,
        ResourceType::Cluster,
        crate::security::acl::CLUSTER_NAME,
    );
    for (id, protocol_type, state) in groups {
        if !filter.is_empty() && !filter.contains(&state.name().to_lowercase()) {
            continue;
        }
        if !every_group
            && !api.authorized_quietly(client, Operation::Describe, ResourceType::Group, &id)
        {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(s(id));
        g.protocol_type = s(protocol_type);
        if version >= 4 {
            g.group_state = s(state.name());
        }
        if version >= 5 {
            g.group_type = s("classic");
        }
        response.groups.push(g);
    }
    response
}

pub fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    let include_operations = version >= 3 && request.include_authorized_operations;
    let describable = api.authorized_names(
        client,
        Operation::Describe,
        ResourceType::Group,
        request.groups.iter().map(|g| g.0.as_str()),
    );
    for id in request.groups {
        let mut g = DescribedGroup::default();
        if version >= 3 {
            // Kafka sends INT_MIN when the operations were not asked for.
            g.authorized_operations = i32::MIN;
        }
        if !describable.contains(id.0.as_str()) {
            g.error_code = ResponseError::GroupAuthorizationFailed.code();
            g.group_id = id;
            response.groups.push(g);
            continue;
        }
        match api.groups.describe(&id.0) {
            Err(e) => g.error_code = e.kafka_error_code(),
            Ok(None) => {
                // Kafka: an unknown group is described as Dead, without error.
                g.group_state = s(GroupState::Dead.name());
            }
            Ok(Some(d)) => {
                g.group_state = s(d.state.name());
                g.protocol_type = s(d.protocol_type);
                g.protocol_data = s(d.protocol);
                g.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = s(m.member_id);
                        if version >= 4 {
                            dm.group_instance_id = m.group_instance_id.map(s);
                        }
                        dm.client_id = s(m.client_id);
                        dm.client_host = s(m.client_host);
                        dm.member_metadata = m.metadata;
                        dm.member_assignment = m.assignment;
                        dm
                    })
                    .collect();
            }
        }
        if include_operations && g.error_code == errors::NONE {
            g.authorized_operations = api.authorized_operations(client, ResourceType::Group, &id.0);
        }
        g.group_id = id;
        response.groups.push(g);
    }
    response
}

pub async fn delete(
    api: &Api,
    client: &ClientInfo,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    let deletable = api.authorized_names(
        client,
        Operation::Delete,
        ResourceType::Group,
        request.groups_names.iter().map(|g| g.0.as_str()),
    );
    for id in request.groups_names {
        let mut r = DeletableGroupResult::default();
        r.error_code = if deletable.contains(id.0.as_str()) {
            match api.groups.delete(&id.0).await {
                Ok(()) => errors::NONE,
                Err(e) => e.kafka_error_code(),
            }
        } else {
            ResponseError::GroupAuthorizationFailed.code()
        };
        r.group_id = id;
        response.results.push(r);
    }
    response
}
