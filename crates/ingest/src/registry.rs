//! The registry of known enterprises that references are checked against: every USCC
//! in the warehouse's `enterprise` table and this run's registry files, and every name
//! each has carried (current and past), normalized.

use std::collections::{BTreeSet, HashMap, HashSet};

/// What a name links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameLink {
    /// No registry entry has this name.
    None,
    /// Exactly one enterprise has (or had) this name.
    One(String),
    /// Several enterprises have (or had) this name.
    Many(usize),
}

/// Known enterprises.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    usccs: HashSet<String>,
    names: HashMap<String, BTreeSet<String>>,
}

impl Registry {
    /// Adds an enterprise under one of its names (already normalized text).
    pub fn add(&mut self, uscc: &str, name: Option<&str>) {
        self.usccs.insert(uscc.to_string());
        if let Some(name) = name {
            self.names
                .entry(townstat_domain::text::normalize(name))
                .or_default()
                .insert(uscc.to_string());
        }
    }

    /// Whether a USCC is registered.
    pub fn contains(&self, uscc: &str) -> bool {
        self.usccs.contains(uscc)
    }

    /// Links a name by exact normalized match.
    pub fn link_name(&self, name: &str) -> NameLink {
        match self.names.get(&townstat_domain::text::normalize(name)) {
            None => NameLink::None,
            Some(set) if set.len() == 1 => {
                NameLink::One(set.iter().next().cloned().unwrap_or_default())
            }
            Some(set) => NameLink::Many(set.len()),
        }
    }

    /// How many enterprises are known.
    pub fn len(&self) -> usize {
        self.usccs.len()
    }

    /// Whether none are known.
    pub fn is_empty(&self) -> bool {
        self.usccs.is_empty()
    }
}
