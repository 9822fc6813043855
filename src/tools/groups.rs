//! `odradek groups`: list consumer groups and describe them (offsets and lag, members, or
//! state) in the columns of `kafka-consumer-groups.sh --bootstrap-server`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::client::{Bootstrap, Cluster, ConnectArgs, Result, ToolError, error_name};
use super::membership::{committed_offsets, decode_assignment};

pub enum Action {
    List,
    Describe { groups: Vec<String>, view: View },
}

/// What `--describe` shows, as kafka-consumer-groups.sh's `--offsets` (the default),
/// `--members [--verbose]` and `--state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Offsets,
    Members { verbose: bool },
    State,
}

/// Kafka's placeholder for a column without a value.
const MISSING: &str = "-";
const GROUP_ID_NOT_FOUND: i16 = 69;

pub async fn run(bootstrap: &Bootstrap, action: Action, out: &mut impl Write) -> Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    match action {
        Action::List => {
            for g in list(&mut cluster).await? {
                writeln!(out, "{g}").map_err(io)?;
            }
            Ok(())
        }
        Action::Describe { groups, view } => {
            let groups = if groups.is_empty() {
                list(&mut cluster).await?
            } else {
                groups
            };
            let mut missing = Vec::new();
            for g in groups {
                let Some(described) = describe(&mut cluster, &g).await? else {
                    missing.push(g);
                    continue;
                };
                match view {
                    View::Offsets => print_offsets(&mut cluster, &described, out).await?,
                    View::Members { verbose } => print_members(&described, verbose, out)?,
                    View::State => print_state(&described, out)?,
                }
            }
            match missing.as_slice() {
                [] => Ok(()),
                _ => Err(ToolError::Kafka(
                    missing
                        .iter()
                        .map(|g| format!("Consumer group '{g}' does not exist."))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )),
            }
        }
    }
}

fn io(e: std::io::Error) -> ToolError {
    ToolError::Usage(format!("writing output: {e}"))
}

/// Consumer groups of every broker (each lists the groups it coordinates), sorted; groups of
/// other protocols (Connect, say) are left out, as Kafka's admin client does.
async fn list(cluster: &mut Cluster) -> Result<Vec<String>> {
    cluster.metadata(Some(&[]), false).await?;
    let mut groups = BTreeSet::new();
    for id in cluster.broker_ids() {
        let ResponseKind::ListGroups(r) = cluster
            .broker(id)
            .await?
            .call(
                ApiKey::ListGroups,
                RequestKind::ListGroups(ListGroupsRequest::default()),
            )
            .await?
        else {
            return Err(ToolError::Kafka("unexpected response to ListGroups".into()));
        };
        if r.error_code != 0 {
            return Err(ToolError::Kafka(format!(
                "listing groups on broker {id}: {}",
                error_name(r.error_code)
            )));
        }
        groups.extend(
            r.groups
                .iter()
                .filter(|g| g.protocol_type.is_empty() || &*g.protocol_type == "consumer")
                .map(|g| g.group_id.0.to_string()),
        );
    }
    Ok(groups.into_iter().collect())
}

struct Member {
    id: String,
    host: String,
    client_id: String,
    assignment: BTreeMap<String, Vec<i32>>,
}

struct Described {
    group: String,
    state: String,
    strategy: String,
    coordinator: (i32, String),
    members: Vec<Member>,
}

/// DescribeGroups at the group's coordinator; `None` for a group that does not exist.
async fn describe(cluster: &mut Cluster, group: &str) -> Result<Option<Described>> {
    let coordinator = cluster.coordinator(group).await?;
    let mut req = DescribeGroupsRequest::default();
    req.groups
        .push(GroupId(StrBytes::from_string(group.to_string())));
    let ResponseKind::DescribeGroups(r) = cluster
        .broker(coordinator)
        .await?
        .call(ApiKey::DescribeGroups, RequestKind::DescribeGroups(req))
        .await?
    else {
        return Err(ToolError::Kafka(
            "unexpected response to DescribeGroups".into(),
        ));
    };
    let d = r
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ToolError::Kafka("empty DescribeGroups response".into()))?;
    if d.error_code == GROUP_ID_NOT_FOUND || &*d.group_state == "Dead" {
        return Ok(None);
    }
    if d.error_code != 0 {
        return Err(ToolError::Kafka(format!(
            "describing group {group}: {}",
            error_name(d.error_code)
        )));
    }
    let consumer = &*d.protocol_type == "consumer";
    let members = d
        .members
        .iter()
        .map(|m| Member {
            id: m.member_id.to_string(),
            host: m.client_host.to_string(),
            client_id: m.client_id.to_string(),
            assignment: if consumer {
                decode_assignment(&m.member_assignment).unwrap_or_default()
            } else {
                BTreeMap::new()
            },
        })
        .collect();
    Ok(Some(Described {
        group: group.to_string(),
        state: d.group_state.to_string(),
        strategy: d.protocol_data.to_string(),
        coordinator: (coordinator, cluster.broker_addr(coordinator)?),
        members,
    }))
}

/// Kafka's notes on the group's state, on standard error; whether there is a table to print.
fn state_note(d: &Described, rows: usize) -> bool {
    match d.state.as_str() {
        "Empty" => eprintln!("\nConsumer group '{}' has no active members.", d.group),
        "PreparingRebalance" | "CompletingRebalance" => {
            eprintln!("\nWarning: Consumer group '{}' is rebalancing.", d.group)
        }
        _ => {}
    }
    rows > 0
}

struct OffsetRow {
    topic: String,
    partition: Option<i32>,
    offset: Option<i64>,
    end: Option<i64>,
    consumer: String,
    host: String,
    client_id: String,
}

async fn print_offsets(cluster: &mut Cluster, d: &Described, out: &mut impl Write) -> Result<()> {
    let committed = committed_offsets(cluster, d.coordinator.0, &d.group, None).await?;
    let mut rows = Vec::new();
    let mut assigned = BTreeSet::new();
    // Members with the most partitions first, each member's partitions in order, as Kafka does.
    let mut members: Vec<&Member> = d.members.iter().collect();
    members.sort_by_key(|m| std::cmp::Reverse(m.assignment.values().map(Vec::len).sum::<usize>()));
    for m in members {
        let row = |topic: &str, partition: Option<i32>| OffsetRow {
            topic: topic.to_string(),
            partition,
            offset: partition.and_then(|p| committed.get(&(topic.to_string(), p)).copied()),
            end: None,
            consumer: m.id.clone(),
            host: m.host.clone(),
            client_id: m.client_id.clone(),
        };
        let mut tps: Vec<(&String, i32)> = m
            .assignment
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |&p| (t, p)))
            .collect();
        tps.sort_by_key(|&(_, p)| p);
        if tps.is_empty() {
            rows.push(row(MISSING, None));
        }
        for (t, p) in tps {
            assigned.insert((t.clone(), p));
            rows.push(row(t, Some(p)));
        }
    }
    for ((t, p), &offset) in &committed {
        if !assigned.contains(&(t.clone(), *p)) {
            rows.push(OffsetRow {
                topic: t.clone(),
                partition: Some(*p),
                offset: Some(offset),
                end: None,
                consumer: MISSING.into(),
                host: MISSING.into(),
                client_id: MISSING.into(),
            });
        }
    }
    let mut wanted: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for r in &rows {
        if let Some(p) = r.partition {
            wanted.entry(r.topic.clone()).or_default().push(p);
        }
    }
    let topics: Vec<String> = wanted.keys().cloned().collect();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    if !topics.is_empty() {
        cluster.metadata(Some(&topics), false).await?;
        for (t, ps) in &wanted {
            // A deleted topic or a partition without a leader shows no log end offset.
            if let Ok(found) = cluster.list_offsets(t, ps, -1).await {
                ends.extend(found.into_iter().map(|(p, o)| ((t.clone(), p), o)));
            }
        }
    }
    for r in &mut rows {
        r.end = r
            .partition
            .and_then(|p| ends.get(&(r.topic.clone(), p)).copied());
    }
    if !state_note(d, rows.len()) {
        return Ok(());
    }
    let width = |f: &dyn Fn(&OffsetRow) -> usize| rows.iter().map(f).max().unwrap_or(0).max(15);
    let gw = d.group.len().max(15);
    let tw = width(&|r| r.topic.len());
    let cw = width(&|r| r.consumer.len());
    let hw = width(&|r| r.host.len());
    let opt = |v: Option<i64>| v.map_or(MISSING.to_string(), |v| v.to_string());
    writeln!(
        out,
        "\n{:<gw$} {:<tw$} {:<10} {:<15} {:<15} {:<15} {:<cw$} {:<hw$} CLIENT-ID",
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
    )
    .map_err(io)?;
    for r in &rows {
        let lag = r.offset.filter(|&o| o != -1).zip(r.end).map(|(o, e)| e - o);
        writeln!(
            out,
            "{:<gw$} {:<tw$} {:<10} {:<15} {:<15} {:<15} {:<cw$} {:<hw$} {}",
            d.group,
            r.topic,
            opt(r.partition.map(i64::from)),
            opt(r.offset),
            opt(r.end),
            opt(lag),
            r.consumer,
            r.host,
            r.client_id
        )
        .map_err(io)?;
    }
    Ok(())
}

fn print_members(d: &Described, verbose: bool, out: &mut impl Write) -> Result<()> {
    if !state_note(d, d.members.len()) {
        return Ok(());
    }
    let width = |f: &dyn Fn(&Member) -> usize| d.members.iter().map(f).max().unwrap_or(0).max(15);
    let gw = d.group.len().max(15);
    let cw = width(&|m| m.id.len());
    let hw = width(&|m| m.host.len());
    let lw = width(&|m| m.client_id.len());
    write!(
        out,
        "\n{:<gw$} {:<cw$} {:<hw$} {:<lw$} {:<15} ",
        "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"
    )
    .map_err(io)?;
    writeln!(out, "{}", if verbose { "ASSIGNMENT" } else { "" }).map_err(io)?;
    for m in &d.members {
        let n: usize = m.assignment.values().map(Vec::len).sum();
        write!(
            out,
            "{:<gw$} {:<cw$} {:<hw$} {:<lw$} {:<15} ",
            d.group, m.id, m.host, m.client_id, n
        )
        .map_err(io)?;
        let assignment = if !verbose {
            String::new()
        } else if n == 0 {
            MISSING.to_string()
        } else {
            m.assignment
                .iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(t, ps)| {
                    let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                    format!("{t}({})", ps.join(","))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(out, "{assignment}").map_err(io)?;
    }
    Ok(())
}

fn print_state(d: &Described, out: &mut impl Write) -> Result<()> {
    state_note(d, 1);
    let coordinator = format!("{} ({})", d.coordinator.1, d.coordinator.0);
    let w = coordinator.len().max(25);
    writeln!(
        out,
        "\n{:<w$} {:<25} {:<20} {:<15} #MEMBERS\n{:<w$} {:<25} {:<20} {:<15} {}",
        "GROUP",
        "COORDINATOR (ID)",
        "ASSIGNMENT-STRATEGY",
        "STATE",
        d.group,
        coordinator,
        d.strategy,
        d.state,
        d.members.len()
    )
    .map_err(io)
}

/// `odradek groups`: kafka-consumer-groups.sh's flags.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print every consumer group's id.
    #[arg(long, conflicts_with = "describe")]
    list: bool,
    /// Describe --group (or --all-groups): by default offsets and lag per partition.
    #[arg(long)]
    describe: bool,
    /// The group to describe; repeat for more.
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Describe every group.
    #[arg(long, conflicts_with = "groups")]
    all_groups: bool,
    /// With --describe: committed offset, log end offset and lag per partition (the default).
    #[arg(long, conflicts_with_all = ["members", "state"])]
    offsets: bool,
    /// With --describe: the members and how many partitions each has.
    #[arg(long, conflicts_with = "state")]
    members: bool,
    /// With --members: each member's partitions.
    #[arg(long, requires = "members")]
    verbose: bool,
    /// With --describe: coordinator, assignment strategy, state and member count.
    #[arg(long)]
    state: bool,
}

impl Args {
    /// Turns the flags into one `Action` and runs it, printing to standard output.
    pub async fn run(self) -> Result<()> {
        // `--offsets` only names the default view; clap checks its conflicts.
        let action = if self.list {
            Action::List
        } else if self.describe {
            if self.groups.is_empty() && !self.all_groups {
                return Err(ToolError::Usage(
                    "--describe needs --group or --all-groups".into(),
                ));
            }
            let view = if self.members {
                View::Members {
                    verbose: self.verbose,
                }
            } else if self.state {
                View::State
            } else {
                View::Offsets
            };
            Action::Describe {
                groups: self.groups,
                view,
            }
        } else {
            return Err(ToolError::Usage("one of --list, --describe".into()));
        };
        run(&self.connect.bootstrap()?, action, &mut std::io::stdout()).await
    }
}
