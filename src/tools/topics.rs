//! `odradek topics`: create, list, describe, delete topics and add partitions, like
//! `kafka-topics.sh --bootstrap-server`.

use std::io::Write;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::client::{Bootstrap, Cluster, ConnectArgs, Result, ToolError, error_name};

pub enum Action {
    Create {
        topic: String,
        partitions: i32,
        replication_factor: i16,
        configs: Vec<(String, String)>,
    },
    List,
    Describe {
        topic: Option<String>,
    },
    Delete {
        topic: String,
    },
    /// Grow a topic to `partitions` partitions.
    Alter {
        topic: String,
        partitions: i32,
    },
}

pub async fn run(bootstrap: &Bootstrap, action: Action, out: &mut impl Write) -> Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let w = |out: &mut dyn Write, s: String| {
        writeln!(out, "{s}").map_err(|e| ToolError::Usage(e.to_string()))
    };
    match action {
        Action::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.clone()));
            t.num_partitions = partitions;
            t.replication_factor = replication_factor;
            for (k, v) in configs {
                let mut c = create_topics_request::CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k);
                c.value = Some(StrBytes::from_string(v));
                t.configs.push(c);
            }
            let mut req = CreateTopicsRequest::default();
            req.topics.push(t);
            req.timeout_ms = 30_000;
            let ResponseKind::CreateTopics(r) = cluster
                .admin()
                .call(ApiKey::CreateTopics, RequestKind::CreateTopics(req))
                .await?
            else {
                return Err(ToolError::Kafka(
                    "unexpected response to CreateTopics".into(),
                ));
            };
            let result = r
                .topics
                .first()
                .ok_or_else(|| ToolError::Kafka("empty CreateTopics response".into()))?;
            if result.error_code != 0 {
                let msg = result.error_message.as_deref().unwrap_or("");
                return Err(ToolError::Kafka(format!(
                    "cannot create {topic}: {} {msg}",
                    error_name(result.error_code)
                )));
            }
            w(out, format!("Created topic {topic}."))
        }
        Action::List => {
            let r = cluster.metadata(None, false).await?;
            let mut names: Vec<String> = r
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect();
            names.sort();
            for n in names {
                w(out, n)?;
            }
            Ok(())
        }
        Action::Describe { topic } => {
            let wanted = topic.map(|t| vec![t]);
            let r = cluster.metadata(wanted.as_deref(), false).await?;
            let mut topics: Vec<_> = r.topics.iter().collect();
            topics.sort_by_key(|t| t.name.as_ref().map(|n| n.0.to_string()));
            for t in topics {
                let name = t.name.as_ref().map_or(String::new(), |n| n.0.to_string());
                if t.error_code != 0 {
                    return Err(ToolError::Kafka(format!(
                        "topic {name}: {}",
                        error_name(t.error_code)
                    )));
                }
                let rf = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
                w(
                    out,
                    format!(
                        "Topic: {name}\tPartitionCount: {}\tReplicationFactor: {rf}",
                        t.partitions.len()
                    ),
                )?;
                let mut parts: Vec<_> = t.partitions.iter().collect();
                parts.sort_by_key(|p| p.partition_index);
                for p in parts {
                    let list = |ids: &[BrokerId]| {
                        ids.iter()
                            .map(|b| b.0.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    w(
                        out,
                        format!(
                            "\tTopic: {name}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                            p.partition_index,
                            p.leader_id.0,
                            list(&p.replica_nodes),
                            list(&p.isr_nodes)
                        ),
                    )?;
                }
            }
            Ok(())
        }
        Action::Delete { topic } => {
            let mut req = DeleteTopicsRequest::default();
            req.topic_names
                .push(TopicName(StrBytes::from_string(topic.clone())));
            let mut state = delete_topics_request::DeleteTopicState::default();
            state.name = Some(TopicName(StrBytes::from_string(topic.clone())));
            req.topics.push(state);
            req.timeout_ms = 30_000;
            let version = cluster.admin().version(ApiKey::DeleteTopics)?;
            // Versions before 6 name topics in `topic_names`, later ones in `topics`.
            if version >= 6 {
                req.topic_names.clear();
            } else {
                req.topics.clear();
            }
            let ResponseKind::DeleteTopics(r) = cluster
                .admin()
                .call(ApiKey::DeleteTopics, RequestKind::DeleteTopics(req))
                .await?
            else {
                return Err(ToolError::Kafka(
                    "unexpected response to DeleteTopics".into(),
                ));
            };
            match r.responses.first() {
                Some(d) if d.error_code != 0 => Err(ToolError::Kafka(format!(
                    "cannot delete {topic}: {}",
                    error_name(d.error_code)
                ))),
                _ => w(out, format!("Deleted topic {topic}.")),
            }
        }
        Action::Alter { topic, partitions } => {
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.clone()));
            t.count = partitions;
            // Null: the broker places the new partitions (an empty list would be refused).
            t.assignments = None;
            let mut req = CreatePartitionsRequest::default();
            req.topics.push(t);
            req.timeout_ms = 30_000;
            let ResponseKind::CreatePartitions(r) = cluster
                .admin()
                .call(ApiKey::CreatePartitions, RequestKind::CreatePartitions(req))
                .await?
            else {
                return Err(ToolError::Kafka(
                    "unexpected response to CreatePartitions".into(),
                ));
            };
            match r.results.first() {
                Some(res) if res.error_code != 0 => Err(ToolError::Kafka(format!(
                    "cannot alter {topic}: {} {}",
                    error_name(res.error_code),
                    res.error_message.as_deref().unwrap_or("")
                ))),
                Some(_) => w(
                    out,
                    format!("Topic {topic} now has {partitions} partitions."),
                ),
                None => Err(ToolError::Kafka("empty CreatePartitions response".into())),
            }
        }
    }
}

/// `odradek topics`: kafka-topics.sh --bootstrap-server's flags.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Create --topic with --partitions, --replication-factor and --config.
    #[arg(long, conflicts_with_all = ["list", "describe", "delete", "alter"])]
    create: bool,
    /// Print every topic's name.
    #[arg(long)]
    list: bool,
    /// Print partitions, leaders, replicas and ISR of --topic (or of every topic).
    #[arg(long)]
    describe: bool,
    /// Delete --topic.
    #[arg(long)]
    delete: bool,
    /// Grow the topic to --partitions partitions.
    #[arg(long, conflicts_with_all = ["list", "describe", "delete"])]
    alter: bool,
    #[arg(long)]
    topic: Option<String>,
    /// Partitions to create, or to grow to with --alter (-1: the broker's default).
    #[arg(long, default_value_t = -1)]
    partitions: i32,
    /// Replicas per partition (-1: the broker's default).
    #[arg(long, default_value_t = -1)]
    replication_factor: i16,
    /// A topic config, `key=value`; repeat for more.
    #[arg(long, value_name = "KEY=VALUE")]
    config: Vec<String>,
}

impl Args {
    /// Turns the flags into one `Action` and runs it, printing to standard output.
    pub async fn run(self) -> Result<()> {
        let need_topic = || {
            self.topic
                .clone()
                .ok_or_else(|| ToolError::Usage("--topic is required".into()))
        };
        let action = if self.create {
            let configs = self
                .config
                .iter()
                .map(|c| super::invocation::key_value(c, "--config"))
                .collect::<Result<Vec<_>>>()?;
            Action::Create {
                topic: need_topic()?,
                partitions: self.partitions,
                replication_factor: self.replication_factor,
                configs,
            }
        } else if self.alter {
            if self.partitions < 1 {
                return Err(ToolError::Usage(
                    "--alter needs --partitions, the new partition count".into(),
                ));
            }
            Action::Alter {
                topic: need_topic()?,
                partitions: self.partitions,
            }
        } else if self.delete {
            Action::Delete {
                topic: need_topic()?,
            }
        } else if self.describe {
            Action::Describe {
                topic: self.topic.clone(),
            }
        } else if self.list {
            Action::List
        } else {
            return Err(ToolError::Usage(
                "one of --create, --list, --describe, --delete, --alter".into(),
            ));
        };
        run(&self.connect.bootstrap()?, action, &mut std::io::stdout()).await
    }
}
