//! Every relationship of a server (m-to-1, RFC 7031 req. 3).

use super::*;

/// Every relationship of a server; the [`LeasePolicy`] DHCPv6 processing
/// consults (`rel` is the index into the list).
#[derive(Debug, Default)]
pub struct Relationships {
    endpoints: Vec<FailoverEndpoint>,
}

impl Relationships {
    /// The endpoints, in configuration order.
    pub fn new(endpoints: Vec<FailoverEndpoint>) -> Relationships {
        Relationships { endpoints }
    }

    /// Relationship `rel`'s endpoint.
    pub fn get(&self, rel: usize) -> Option<&FailoverEndpoint> {
        self.endpoints.get(rel)
    }

    /// Relationship `rel`'s endpoint, to drive it.
    pub fn get_mut(&mut self, rel: usize) -> Option<&mut FailoverEndpoint> {
        self.endpoints.get_mut(rel)
    }

    /// The index of the relationship named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.name() == name)
    }

    /// Every endpoint.
    pub fn iter(&self) -> impl Iterator<Item = &FailoverEndpoint> {
        self.endpoints.iter()
    }

    /// Every endpoint, to drive them.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut FailoverEndpoint> {
        self.endpoints.iter_mut()
    }

    /// How many relationships.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether the server is in no relationship (standalone).
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}
