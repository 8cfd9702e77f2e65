"""Alerting checks: did the failover events, alarms and notifications a game day expects fire?

`probes` asserts on AWS-side evidence (DescribeEvents, CloudWatch alarm history, SNS metrics);
`notify` sends the run's own notifications (Slack incoming webhook, generic JSON webhook).
"""
