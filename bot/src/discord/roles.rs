//! Discord roles as swarm roles, enforced in code for every command (never only through Discord's
//! `default_member_permissions`, which a guild admin can override).

use dreamos_runtime::config::{DiscordConfig, Role};

/// The swarm role of a member: captain by user id, else the highest configured role they hold, else the
/// `everyone` role (`None`: only `/help`).
pub fn resolve(config: &DiscordConfig, user: u64, roles: &[u64]) -> Option<Role> {
    if config.captain_user_ids.iter().any(|id| id.0 == user) {
        return Some(Role::Captain);
    }
    let holds =
        |ids: &[dreamos_runtime::config::DiscordId]| ids.iter().any(|id| roles.contains(&id.0));
    if holds(&config.captain_role_ids) {
        Some(Role::Captain)
    } else if holds(&config.operator_role_ids) {
        Some(Role::Operator)
    } else if holds(&config.viewer_role_ids) {
        Some(Role::Viewer)
    } else {
        config.everyone.role()
    }
}

/// What a member without the role must ask for, naming the configuration keys that grant it.
pub fn needed(needed: Role, have: Option<Role>) -> String {
    let key = match needed {
        Role::Captain => "captain_role_ids",
        Role::Operator => "operator_role_ids (or captain)",
        Role::Viewer => "viewer_role_ids (or higher)",
    };
    match have {
        Some(role) => format!(
            "this command needs the {needed} role; you are {role}. A role listed in [discord] {key} grants it"
        ),
        None => format!(
            "this command needs the {needed} role, and you have none of the swarm's roles. A role listed in [discord] {key} grants it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use dreamos_runtime::config::{Config, DiscordId, EveryoneRole};

    use super::*;

    #[test]
    fn the_highest_role_wins_and_captains_are_also_named_by_user() {
        let mut config = Config::defaults().discord;
        config.viewer_role_ids = vec![DiscordId(1)];
        config.operator_role_ids = vec![DiscordId(2)];
        config.captain_role_ids = vec![DiscordId(3)];
        config.captain_user_ids = vec![DiscordId(99)];
        let check = |user, roles: &[u64], want| assert_eq!(resolve(&config, user, roles), want);
        check(5, &[], None);
        check(5, &[1], Some(Role::Viewer));
        check(5, &[1, 2], Some(Role::Operator));
        check(5, &[2, 3, 7], Some(Role::Captain));
        check(99, &[], Some(Role::Captain));
        config.everyone = EveryoneRole::Viewer;
        assert_eq!(resolve(&config, 5, &[8]), Some(Role::Viewer));
    }
}
