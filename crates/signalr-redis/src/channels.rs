//! Channel names, as the reference's backplane spells them: `<prefix><hub>:all`,
//! `<prefix><hub>:group:<name>` and so on, where `<prefix>` is the optional channel prefix
//! that StackExchange.Redis puts in front of every channel.

/// The channel names of one hub.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    /// `<prefix><hub>`.
    base: String,
}

/// What a received channel name addresses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Addressed<'c> {
    All,
    Connection(&'c str),
    Group(&'c str),
    User(&'c str),
    GroupCommands,
    Acks,
    Results,
    Other,
}

impl Channels {
    pub(crate) fn new(prefix: &str, hub: &str) -> Self {
        Channels {
            base: format!("{prefix}{hub}"),
        }
    }

    /// `<prefix><hub>`, for logs.
    pub(crate) fn hub(&self) -> &str {
        &self.base
    }

    pub(crate) fn all(&self) -> String {
        format!("{}:all", self.base)
    }

    pub(crate) fn connection(&self, connection_id: &str) -> String {
        format!("{}:connection:{connection_id}", self.base)
    }

    pub(crate) fn group(&self, group: &str) -> String {
        format!("{}:group:{group}", self.base)
    }

    pub(crate) fn user(&self, user: &str) -> String {
        format!("{}:user:{user}", self.base)
    }

    pub(crate) fn group_commands(&self) -> String {
        format!("{}:internal:groups", self.base)
    }

    pub(crate) fn acks(&self, server_name: &str) -> String {
        format!("{}:internal:ack:{server_name}", self.base)
    }

    pub(crate) fn results(&self, server_name: &str) -> String {
        format!("{}:internal:return:{server_name}", self.base)
    }

    /// What `channel` addresses, for a node named `server_name`.
    pub(crate) fn classify<'c>(&self, channel: &'c str, server_name: &str) -> Addressed<'c> {
        let Some(rest) = channel
            .strip_prefix(self.base.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            return Addressed::Other;
        };
        if rest == "all" {
            return Addressed::All;
        }
        if let Some(id) = rest.strip_prefix("connection:") {
            return Addressed::Connection(id);
        }
        if let Some(group) = rest.strip_prefix("group:") {
            return Addressed::Group(group);
        }
        if let Some(user) = rest.strip_prefix("user:") {
            return Addressed::User(user);
        }
        match rest.strip_prefix("internal:") {
            Some("groups") => Addressed::GroupCommands,
            Some(other) if other.strip_prefix("ack:") == Some(server_name) => Addressed::Acks,
            Some(other) if other.strip_prefix("return:") == Some(server_name) => Addressed::Results,
            _ => Addressed::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_reference() {
        let channels = Channels::new("", "Chat.Hub");
        assert_eq!(channels.all(), "Chat.Hub:all");
        assert_eq!(channels.connection("c1"), "Chat.Hub:connection:c1");
        assert_eq!(channels.group("a*b"), "Chat.Hub:group:a*b");
        assert_eq!(channels.user("ann"), "Chat.Hub:user:ann");
        assert_eq!(channels.group_commands(), "Chat.Hub:internal:groups");
        assert_eq!(channels.acks("n1"), "Chat.Hub:internal:ack:n1");
        assert_eq!(channels.results("n1"), "Chat.Hub:internal:return:n1");
        assert_eq!(Channels::new("app1-", "H").all(), "app1-H:all");
    }

    #[test]
    fn received_names_are_classified() {
        let channels = Channels::new("p", "H");
        let classify = |name: &str| format!("{:?}", channels.classify(name, "n1"));
        assert_eq!(classify("pH:all"), "All");
        assert_eq!(classify("pH:group:g:1"), "Group(\"g:1\")");
        assert_eq!(classify("pH:user:ann"), "User(\"ann\")");
        assert_eq!(classify("pH:connection:c"), "Connection(\"c\")");
        assert_eq!(classify("pH:internal:groups"), "GroupCommands");
        assert_eq!(classify("pH:internal:ack:n1"), "Acks");
        assert_eq!(classify("pH:internal:return:n1"), "Results");
        assert_eq!(classify("pH:internal:ack:n2"), "Other");
        assert_eq!(classify("pHX:all"), "Other");
        assert_eq!(classify("H:all"), "Other");
    }
}
