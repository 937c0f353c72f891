"""From alert transitions to messages people read. Pure: routing (contact points and routes) and dispatch
(grouping, repeats, escalation). At the edge: notifyfile (reads the routing file and the environment), outbox
(the notification log), channels (Apprise senders) and delivery (the supervised loops)."""
