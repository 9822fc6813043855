//! ACL filters of DescribeAcls and DeleteAcls (Kafka's `AclBindingFilter`): which patterns and
//! which entries a filter selects. `None` fields and `Any` values match anything.

use super::{
    AccessControlEntry, Operation, PatternType, Permission, ResourcePattern, ResourceType,
    WILDCARD_RESOURCE,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePatternFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
}

impl ResourcePatternFilter {
    pub fn any() -> Self {
        ResourcePatternFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
        }
    }

    /// `ResourcePatternFilter.matches`: ANY pattern type compares the name exactly on both
    /// kinds; MATCH selects the literal name, the literal `*` and every prefix of the name.
    pub fn matches(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != pattern.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return *name == pattern.name;
        }
        match pattern.pattern_type {
            PatternType::Literal => *name == pattern.name || pattern.name == WILDCARD_RESOURCE,
            PatternType::Prefixed => name.starts_with(&pattern.name),
            _ => false,
        }
    }

    /// The patterns this filter names exactly (Kafka's `matchesAtMostOne` filters, with ANY
    /// meaning both kinds): DeleteAcls also looks at these when they are not cached.
    pub fn exact_patterns(&self) -> Vec<ResourcePattern> {
        let Some(name) = &self.name else {
            return Vec::new();
        };
        if matches!(
            self.resource_type,
            ResourceType::Any | ResourceType::Unknown
        ) {
            return Vec::new();
        }
        let kinds: &[PatternType] = match self.pattern_type {
            PatternType::Literal => &[PatternType::Literal],
            PatternType::Prefixed => &[PatternType::Prefixed],
            PatternType::Any => &[PatternType::Literal, PatternType::Prefixed],
            _ => &[],
        };
        kinds
            .iter()
            .map(|k| ResourcePattern::new(self.resource_type, name.clone(), *k))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlEntryFilter {
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AccessControlEntryFilter {
    pub fn any() -> Self {
        AccessControlEntryFilter {
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    /// `AccessControlEntryFilter.matches`: exact strings (no wildcard expansion).
    pub fn matches(&self, entry: &AccessControlEntry) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == entry.principal)
            && self.host.as_ref().is_none_or(|h| *h == entry.host)
            && (self.operation == Operation::Any || self.operation == entry.operation)
            && (self.permission == Permission::Any || self.permission == entry.permission)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub pattern: ResourcePatternFilter,
    pub entry: AccessControlEntryFilter,
}

impl AclBindingFilter {
    pub fn any() -> Self {
        AclBindingFilter {
            pattern: ResourcePatternFilter::any(),
            entry: AccessControlEntryFilter::any(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pattern_type: PatternType, name: Option<&str>) -> ResourcePatternFilter {
        ResourcePatternFilter {
            resource_type: ResourceType::Topic,
            name: name.map(String::from),
            pattern_type,
        }
    }

    #[test]
    fn pattern_filters_follow_kafka() {
        let lit = |n: &str| ResourcePattern::new(ResourceType::Topic, n, PatternType::Literal);
        let pre = |n: &str| ResourcePattern::new(ResourceType::Topic, n, PatternType::Prefixed);
        let f = filter(PatternType::Any, Some("abc"));
        assert!(f.matches(&lit("abc")) && f.matches(&pre("abc")) && !f.matches(&pre("ab")));
        let f = filter(PatternType::Match, Some("abc"));
        assert!(f.matches(&lit("abc")) && f.matches(&lit("*")) && f.matches(&pre("ab")));
        assert!(!f.matches(&pre("abcd")) && !f.matches(&lit("ab")));
        let f = filter(PatternType::Literal, Some("*"));
        assert!(f.matches(&lit("*")) && !f.matches(&lit("abc")));
        let f = filter(PatternType::Prefixed, None);
        assert!(f.matches(&pre("x")) && !f.matches(&lit("x")));
        let group = ResourcePattern::new(ResourceType::Group, "abc", PatternType::Literal);
        assert!(!filter(PatternType::Any, None).matches(&group));
        assert!(ResourcePatternFilter::any().matches(&group));
        assert_eq!(
            filter(PatternType::Literal, Some("a")).exact_patterns(),
            vec![lit("a")]
        );
        assert!(
            filter(PatternType::Match, Some("a"))
                .exact_patterns()
                .is_empty()
        );
        assert_eq!(
            filter(PatternType::Any, Some("a")).exact_patterns(),
            vec![lit("a"), pre("a")]
        );
    }
}
