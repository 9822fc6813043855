//! ZooKeeper's path rules and the chroot: `zookeeper.connect` split into hosts and chroot, the
//! path checks the client does not make, and the mapping between the caller's paths and the
//! server's. Separate because it is pure string handling, testable without a server.

use super::Inner;
use crate::metadata::store::{StoreError, StoreResult};

/// `zookeeper.connect` split into the host list and the chroot (`""` for none).
pub(super) fn split_connect(connect: &str) -> StoreResult<(&str, String)> {
    let bad =
        |reason: &str| StoreError::Unavailable(format!("zookeeper.connect {connect:?}: {reason}"));
    let (hosts, chroot) = match connect.find('/') {
        Some(i) => (&connect[..i], &connect[i..]),
        None => (connect, ""),
    };
    if hosts.trim().is_empty() {
        return Err(bad("no host"));
    }
    let chroot = if chroot == "/" { "" } else { chroot };
    if !chroot.is_empty() {
        validate_path(chroot).map_err(|_| bad("the chroot is not a valid znode path"))?;
    }
    Ok((hosts, chroot.to_string()))
}

/// ZooKeeper's path rules (`PathUtils.validatePath`), checked here because the client checks
/// only a trailing slash and would send anything else to the server.
pub(super) fn validate_path(path: &str) -> StoreResult<()> {
    let bad = |reason: &str| StoreError::BadData {
        path: path.to_string(),
        reason: format!("not a valid znode path: {reason}"),
    };
    if !path.starts_with('/') {
        return Err(bad("must start with /"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(bad("must not end with /"));
    }
    for part in path[1..].split('/') {
        if part.is_empty() {
            return Err(bad("empty name"));
        }
        if part == "." || part == ".." {
            return Err(bad("relative names are not allowed"));
        }
        if part.chars().any(|c| {
            c == '\0'
                || ('\u{1}'..='\u{1f}').contains(&c)
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || ('\u{fff0}'..='\u{ffff}').contains(&c)
        }) {
            return Err(bad("invalid character"));
        }
    }
    Ok(())
}

pub(super) fn parent_of(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

impl Inner {
    pub(super) fn full_path(&self, path: &str) -> String {
        if self.chroot.is_empty() {
            path.to_string()
        } else if path == "/" {
            self.chroot.clone()
        } else {
            format!("{}{path}", self.chroot)
        }
    }

    /// The caller's path for a server path, `None` if it lies outside the chroot.
    pub(super) fn below_chroot(&self, full: &str) -> Option<String> {
        if self.chroot.is_empty() {
            return Some(full.to_string());
        }
        match full.strip_prefix(self.chroot.as_str())? {
            "" => Some("/".to_string()),
            rest if rest.starts_with('/') => Some(rest.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings_split_into_hosts_and_chroot() {
        assert_eq!(
            split_connect("h1:2181,h2:2181/kafka/a").unwrap(),
            ("h1:2181,h2:2181", "/kafka/a".to_string())
        );
        assert_eq!(
            split_connect("h1:2181").unwrap(),
            ("h1:2181", String::new())
        );
        assert_eq!(
            split_connect("h1:2181/").unwrap(),
            ("h1:2181", String::new())
        );
        for bad in ["h1:2181/kafka/", "/kafka", "h1:2181/a//b", ""] {
            assert!(
                matches!(split_connect(bad), Err(StoreError::Unavailable(m)) if m.contains(bad)),
                "{bad}"
            );
        }
    }

    #[test]
    fn znode_paths_follow_zookeeper_rules() {
        for good in [
            "/",
            "/a",
            "/brokers/ids/1",
            "/config/users/%2A",
            "/x/<default>",
        ] {
            assert!(validate_path(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/a/..", "/a\0b", "/a\u{1}"] {
            assert!(
                matches!(validate_path(bad), Err(StoreError::BadData { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/c"), "/a/b");
    }
}
