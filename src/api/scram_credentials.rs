//! DescribeUserScramCredentials (50) and AlterUserScramCredentials (51), KIP-554, as a Kafka
//! broker in ZooKeeper mode answers them (`ZkAdminManager`).
//!
//! A user's SCRAM credentials are config keys of `/config/users/<sanitized user>`
//! (`SCRAM-SHA-256`, `SCRAM-SHA-512`), next to the user's quotas, in the form
//! `kafka-configs.sh --zookeeper` writes. Alter rewrites that node whole (keeping the keys it does
//! not change) with a `/config/changes` notification, so every broker's credential cache picks
//! the change up, this one at once. Describe reads the nodes themselves, so it shows what any
//! tool wrote, and never returns salts or keys, only each mechanism's iteration count.
//!
//! Kafka's rules are followed to the error text, since tools print it: Alter refuses a user as
//! a whole when any of its alterations is wrong, and the checks run in Kafka's order (a user's
//! own mistakes, then the same credential twice, then deleting what is not there).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Api, ClientInfo};
use crate::metadata::StoreError;
use crate::replica::config_changes::USERS;
use crate::security::acl::Operation;
use crate::security::sanitize::{desanitize, sanitize};
use crate::security::sasl::Mechanism;
use crate::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential};

// Kafka's texts (ZkAdminManager), which clients show as the exception message.
const EMPTY_USER: &str = "Username must not be empty";
const UNKNOWN_MECHANISM: &str = "Unknown SCRAM mechanism";
const TOO_FEW_ITERATIONS: &str = "Too few iterations";
const TOO_MANY_ITERATIONS: &str = "Too many iterations";
const ALTERED_TWICE: &str = "A user credential cannot be altered twice in the same request";
const DELETE_MISSING: &str = "Attempt to delete a user credential that does not exist";
const DESCRIBE_MISSING: &str = "Attempt to describe a user credential that does not exist";
/// `Errors.UNKNOWN_SERVER_ERROR.message()`, what Kafka reports for a credential it cannot read.
const UNEXPECTED: &str = "The server experienced an unexpected error when processing the request.";

// ---------------------------------------------------------------------------------------------
// Describe

pub async fn describe(
    api: &Api,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // Authorization (Cluster DESCRIBE, else top-level CLUSTER_AUTHORIZATION_FAILED) goes here.
    let named: Vec<String> = request
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    let mut response = DescribeUserScramCredentialsResponse::default();
    // Null and empty both mean every user, as in Kafka.
    if named.is_empty() {
        match describe_all(api).await {
            Ok(results) => response.results = results,
            Err(e) => {
                // Kafka answers a failure to list the users at the top level, with no results.
                tracing::warn!(error = %e, "could not list the users' SCRAM credentials");
                response.error_code = ResponseError::UnknownServerError.code();
                response.error_message = Some(StrBytes::from_string(format!(
                    "could not read the user configs: {e}"
                )));
            }
        }
    } else {
        response.results = describe_named(api, &named).await;
    }
    response
}

/// Every user with at least one SCRAM credential stored, in Kafka's order of names.
async fn describe_all(api: &Api) -> Result<Vec<DescribeUserScramCredentialsResult>, StoreError> {
    let sanitized_names = api
        .configs
        .store()
        .children(&format!("/config/{USERS}"))
        .await?
        .unwrap_or_default();
    // By user name: two znode names that desanitize alike (`a+b`, `a%20b`) are one user, the
    // last read winning, as in Kafka's map.
    let mut by_user = HashMap::new();
    for sanitized in sanitized_names {
        let user = desanitize(&sanitized);
        let config = stored_config(api, &sanitized).await?;
        if let Some(result) = describe_config(&user, &config) {
            by_user.insert(user, result);
        }
    }
    let mut results: Vec<_> = by_user.into_values().collect();
    results.sort_by(|a, b| java_order(&a.user, &b.user));
    Ok(results)
}

/// The named users, once each in request order: an empty name or one given twice is an error
/// of its own, a user without credentials is RESOURCE_NOT_FOUND.
async fn describe_named(api: &Api, named: &[String]) -> Vec<DescribeUserScramCredentialsResult> {
    let mut occurrences: HashMap<&str, usize> = HashMap::new();
    for name in named {
        *occurrences.entry(name.as_str()).or_default() += 1;
    }
    let mut done = HashSet::new();
    let mut results = Vec::new();
    for name in named {
        if !done.insert(name.as_str()) {
            continue;
        }
        let result = if name.is_empty() {
            describe_error(
                name,
                ResponseError::ResourceNotFound,
                EMPTY_USER.to_string(),
            )
        } else if occurrences.get(name.as_str()).copied().unwrap_or(0) > 1 {
            describe_error(
                name,
                ResponseError::DuplicateResource,
                format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                ),
            )
        } else {
            match stored_config(api, &sanitize(name)).await {
                Ok(config) => describe_config(name, &config).unwrap_or_else(|| {
                    describe_error(
                        name,
                        ResponseError::ResourceNotFound,
                        format!("{DESCRIBE_MISSING}: {name}"),
                    )
                }),
                Err(e) => {
                    tracing::warn!(user = %name, error = %e, "could not read the user's config");
                    describe_error(
                        name,
                        ResponseError::UnknownServerError,
                        format!("could not read the user's config: {e}"),
                    )
                }
            }
        };
        results.push(result);
    }
    results
}

/// What Describe reports of a user's stored config: each SCRAM mechanism it holds with its
/// iteration count, or `None` when it holds none. A credential that does not parse (written by
/// another tool) fails the user with UNKNOWN_SERVER_ERROR and Kafka's generic text, as Kafka
/// does, rather than hiding the bad key: the user cannot log in with it, and an operator listing
/// the users should see why.
fn describe_config(
    user: &str,
    config: &BTreeMap<String, String>,
) -> Option<DescribeUserScramCredentialsResult> {
    let stored: Vec<(Mechanism, &String)> = Mechanism::SCRAM
        .into_iter()
        .filter_map(|m| Some((m, config.get(m.name())?)))
        .collect();
    if stored.is_empty() {
        return None;
    }
    let mut infos = Vec::with_capacity(stored.len());
    for (mechanism, text) in stored {
        let credential = match ScramCredential::parse(text) {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(
                    user,
                    mechanism = mechanism.name(),
                    %error,
                    "unreadable SCRAM credential in the user's config"
                );
                return Some(describe_error(
                    user,
                    ResponseError::UnknownServerError,
                    UNEXPECTED.to_string(),
                ));
            }
        };
        let mut info = CredentialInfo::default();
        info.mechanism = mechanism.scram_id().unwrap_or_default();
        // Parsed from a Java int, so it fits.
        info.iterations = i32::try_from(credential.iterations).unwrap_or(i32::MAX);
        infos.push(info);
    }
    let mut result = DescribeUserScramCredentialsResult::default();
    result.user = StrBytes::from_string(user.to_string());
    result.credential_infos = infos;
    Some(result)
}

fn describe_error(
    user: &str,
    error: ResponseError,
    message: String,
) -> DescribeUserScramCredentialsResult {
    let mut result = DescribeUserScramCredentialsResult::default();
    result.user = StrBytes::from_string(user.to_string());
    result.error_code = error.code();
    result.error_message = Some(StrBytes::from_string(message));
    result
}

/// Java's `String.compareTo` (UTF-16 code units), by which Kafka sorts the users it lists. It
/// differs from Rust's byte order only between characters above U+FFFF and U+E000..U+FFFF.
fn java_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

// ---------------------------------------------------------------------------------------------
// Alter

/// Why Alter refuses a user before looking at the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    EmptyUser,
    UnknownMechanism,
    TooFewIterations,
    TooManyIterations,
}

impl Refusal {
    fn error(self) -> ResponseError {
        match self {
            Refusal::UnknownMechanism => ResponseError::UnsupportedSaslMechanism,
            _ => ResponseError::UnacceptableCredential,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::EmptyUser => EMPTY_USER,
            Refusal::UnknownMechanism => UNKNOWN_MECHANISM,
            Refusal::TooFewIterations => TOO_FEW_ITERATIONS,
            Refusal::TooManyIterations => TOO_MANY_ITERATIONS,
        }
    }
}

/// What one legal upsertion or deletion does to a user's config.
enum Change<'a> {
    Upsert(&'a ScramCredentialUpsertion),
    Delete,
}

struct Alteration<'a> {
    user: &'a str,
    mechanism: Mechanism,
    change: Change<'a>,
}

fn check_upsertion(u: &ScramCredentialUpsertion) -> Result<Mechanism, Refusal> {
    if u.name.is_empty() {
        return Err(Refusal::EmptyUser);
    }
    let mechanism = Mechanism::scram_from_id(u.mechanism).ok_or(Refusal::UnknownMechanism)?;
    let iterations = i64::from(u.iterations);
    if iterations < i64::from(MIN_ITERATIONS) {
        Err(Refusal::TooFewIterations)
    } else if iterations > i64::from(MAX_ITERATIONS) {
        Err(Refusal::TooManyIterations)
    } else {
        Ok(mechanism)
    }
}

fn check_deletion(d: &ScramCredentialDeletion) -> Result<Mechanism, Refusal> {
    if d.name.is_empty() {
        return Err(Refusal::EmptyUser);
    }
    Mechanism::scram_from_id(d.mechanism).ok_or(Refusal::UnknownMechanism)
}

/// The users refused before the store is read, each with one reason, in the order they were
/// first refused. A later reason replaces an earlier one: Kafka keeps one reason per user in a
/// map built from the deletions, then the upsertions, so the last bad upsertion names the error.
#[derive(Default)]
struct Refusals<'a> {
    reasons: Vec<(&'a str, Refusal)>,
    index: HashMap<&'a str, usize>,
}

impl<'a> Refusals<'a> {
    fn refuse(&mut self, user: &'a str, why: Refusal) {
        match self.index.get(user).and_then(|&i| self.reasons.get_mut(i)) {
            Some(entry) => entry.1 = why,
            None => {
                self.index.insert(user, self.reasons.len());
                self.reasons.push((user, why));
            }
        }
    }
}

fn alter_result(
    user: &str,
    error_code: i16,
    message: Option<String>,
) -> AlterUserScramCredentialsResult {
    let mut result = AlterUserScramCredentialsResult::default();
    result.user = StrBytes::from_string(user.to_string());
    result.error_code = error_code;
    result.error_message = message.map(StrBytes::from_string);
    result
}

pub async fn alter(
    api: &Api,
    client: &ClientInfo,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut response = AlterUserScramCredentialsResponse::default();
    // Only the controller alters; there, the client needs ALTER on the cluster.
    let refused = if !api.controller.is_active() {
        Some(ResponseError::NotController.code())
    } else if !api.authorized_on_cluster(client, Operation::Alter) {
        Some(ResponseError::ClusterAuthorizationFailed.code())
    } else {
        None
    };
    if let Some(code) = refused {
        // Kafka's error response: every user named, once, sorted; no message, as Kafka's
        // ApiError leaves it null when it would only repeat the error's own text.
        let mut users: Vec<&str> = request
            .deletions
            .iter()
            .map(|d| &*d.name)
            .chain(request.upsertions.iter().map(|u| &*u.name))
            .collect();
        users.sort_by(|a, b| java_order(a, b));
        users.dedup();
        response.results = users
            .into_iter()
            .map(|u| alter_result(u, code, None))
            .collect();
        return response;
    }
    // Authorization (Cluster ALTER, else CLUSTER_AUTHORIZATION_FAILED per user) goes here.

    // 1. Each user's own mistakes: empty name, unknown mechanism, iterations out of bounds.
    let mut refused = Refusals::default();
    let mut legal = Vec::new();
    for d in &request.deletions {
        match check_deletion(d) {
            Ok(mechanism) => legal.push(Alteration {
                user: &d.name,
                mechanism,
                change: Change::Delete,
            }),
            Err(why) => refused.refuse(&d.name, why),
        }
    }
    for u in &request.upsertions {
        match check_upsertion(u) {
            Ok(mechanism) => legal.push(Alteration {
                user: &u.name,
                mechanism,
                change: Change::Upsert(u),
            }),
            Err(why) => refused.refuse(&u.name, why),
        }
    }
    let mut results: Vec<AlterUserScramCredentialsResult> = refused
        .reasons
        .iter()
        .map(|(user, why)| alter_result(user, why.error().code(), Some(why.message().to_string())))
        .collect();
    // One refused alteration fails every other alteration of that user.
    legal.retain(|a| !refused.index.contains_key(a.user));

    // 2. The same credential altered twice, by two upsertions, two deletions or one of each.
    let mut per_credential: HashMap<(&str, Mechanism), usize> = HashMap::new();
    for a in &legal {
        *per_credential.entry((a.user, a.mechanism)).or_default() += 1;
    }
    let mut duplicated: HashSet<&str> = HashSet::new();
    for a in &legal {
        let count = per_credential.get(&(a.user, a.mechanism)).copied();
        if count.unwrap_or(0) > 1 && duplicated.insert(a.user) {
            results.push(alter_result(
                a.user,
                ResponseError::DuplicateResource.code(),
                Some(ALTERED_TWICE.to_string()),
            ));
        }
    }
    legal.retain(|a| !duplicated.contains(a.user));

    // 3. Per remaining user: read the node, refuse deleting what it does not hold, write the
    // rest. Kafka reports not-found deletions, then failures, then successes.
    let mut users: Vec<(&str, Vec<&Alteration>)> = Vec::new();
    let mut user_index: HashMap<&str, usize> = HashMap::new();
    for a in &legal {
        let i = *user_index.entry(a.user).or_insert_with(|| {
            users.push((a.user, Vec::new()));
            users.len() - 1
        });
        if let Some((_, alterations)) = users.get_mut(i) {
            alterations.push(a);
        }
    }
    let mut not_found = Vec::new();
    let mut failed = Vec::new();
    let mut altered = Vec::new();
    for (user, alterations) in users {
        let mut config = match stored_config(api, &sanitize(user)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(user, error = %e, "could not read the user's config");
                failed.push(alter_result(
                    user,
                    ResponseError::UnknownServerError.code(),
                    Some(format!("could not read the user's config: {e}")),
                ));
                continue;
            }
        };
        let deletes_missing = alterations.iter().any(|a| {
            matches!(a.change, Change::Delete) && !config.contains_key(a.mechanism.name())
        });
        if deletes_missing {
            not_found.push(alter_result(
                user,
                ResponseError::ResourceNotFound.code(),
                Some(DELETE_MISSING.to_string()),
            ));
            continue;
        }
        match apply(&mut config, &alterations) {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(user, error = %e, "could not derive the SCRAM credential");
                failed.push(alter_result(
                    user,
                    ResponseError::UnknownServerError.code(),
                    Some(e),
                ));
                continue;
            }
        }
        match api.configs.change_user_config(user, config).await {
            Ok(()) => {
                let changed: Vec<String> = alterations
                    .iter()
                    .map(|a| match a.change {
                        Change::Upsert(_) => format!("set {}", a.mechanism),
                        Change::Delete => format!("deleted {}", a.mechanism),
                    })
                    .collect();
                tracing::info!(user, ?changed, "altered SCRAM credentials");
                altered.push(alter_result(user, 0, None));
            }
            Err(e) => {
                tracing::warn!(user, error = %e, "could not store the user's SCRAM credentials");
                failed.push(alter_result(
                    user,
                    ResponseError::UnknownServerError.code(),
                    Some(format!("could not store the user's config: {e}")),
                ));
            }
        }
    }
    results.extend(not_found);
    results.extend(failed);
    results.extend(altered);
    response.results = results;
    response
}

/// Applies one user's alterations to its config, deletions first as Kafka does (no credential
/// is both deleted and set: that was refused as a duplicate). Keys other than the credentials
/// (quotas) stay as they are; a credential that did not parse is simply replaced.
fn apply(config: &mut BTreeMap<String, String>, alterations: &[&Alteration]) -> Result<(), String> {
    for a in alterations {
        if matches!(a.change, Change::Delete) {
            config.remove(a.mechanism.name());
        }
    }
    for a in alterations {
        if let Change::Upsert(u) = a.change {
            // Checked in bounds by `check_upsertion`.
            let iterations = u32::try_from(u.iterations).map_err(|e| e.to_string())?;
            let credential = ScramCredential::from_salted_password(
                a.mechanism,
                &u.salt,
                &u.salted_password,
                iterations,
            )?;
            config.insert(a.mechanism.name().to_string(), credential.to_string());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The store

/// A user's stored config, by znode name. A node whose JSON cannot be read counts as holding
/// nothing, as Kafka reads it (`ConfigEntityZNode.decode` ignores unparsable JSON) and as the
/// credential cache does: Describe finds no credential there, and Alter replaces the node.
async fn stored_config(api: &Api, sanitized: &str) -> Result<BTreeMap<String, String>, StoreError> {
    match api.configs.entity_config(USERS, sanitized).await {
        Err(e @ StoreError::BadData { .. }) => {
            tracing::warn!(user = sanitized, error = %e, "unreadable user config; taken as empty");
            Ok(BTreeMap::new())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_sort_as_java_strings_do() {
        // U+1F600 is two UTF-16 units starting 0xD83D, below U+FF21's 0xFF21; in UTF-8 it is
        // the other way round.
        let mut names = vec!["\u{FF21}", "\u{1F600}", "b", "a"];
        names.sort_by(|a, b| java_order(a, b));
        assert_eq!(names, vec!["a", "b", "\u{1F600}", "\u{FF21}"]);
    }
}
