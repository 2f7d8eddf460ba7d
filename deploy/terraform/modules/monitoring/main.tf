# Alarms and where they go. Every alarm notifies the SNS topic (encrypted with
# the stack's key); its runbook is in docs/operations.md under the alarm's name.
#
# - http-5xx-rate and http-p99-latency read the API's load balancer (modules/compute);
# - pix-stream-dlq-depth and pix-stream-errors read the stream Lambda's queue and function;
# - the others read finbank's own metrics (namespace var.metrics_namespace, dimension
#   Environment), each defined once in finbank_adapters.metrics and written by the
#   process that knows the number (EMF lines in its log group).
#   tests/deploy/test_terraform.py checks every name and dimension here against that module.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

resource "aws_cloudwatch_metric_alarm" "http_5xx_rate" {
  alarm_name          = "${var.name_prefix}-http-5xx-rate"
  alarm_description   = "More than ${var.http_5xx_rate_percent}% of HTTP responses are 5xx. Runbook: docs/operations.md#http-5xx-rate"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.http_5xx_rate_percent
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "100 * errors / MAX([requests, 1])"
    label       = "5xx rate (%)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.load_balancer_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.load_balancer_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "http_p99_latency" {
  alarm_name          = "${var.name_prefix}-http-p99-latency"
  alarm_description   = "p99 HTTP latency above ${var.http_p99_latency_seconds}s. Runbook: docs/operations.md#http-p99-latency"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.load_balancer_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 4
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.http_p99_latency_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name_prefix}-pix-stream-dlq-depth"
  alarm_description   = "Stream records the Lambda could not process are waiting in the DLQ. Runbook: docs/operations.md#pix-stream-dlq-depth"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Consumer lag of the settlement worker's group (the worker measures it from the broker
# every 30 s). 1,000 records is minutes of PIX at our volume: payments wait, customers
# notice. 8 of 10 minutes rides out a deploy or a rebalance. No data is breaching: no
# worker is running to report, and nobody settles payments either.
resource "aws_cloudwatch_metric_alarm" "consumer_lag" {
  alarm_name          = "${var.name_prefix}-kafka-consumer-lag"
  alarm_description   = "Consumer group ${var.consumer_group} is more than ${var.consumer_lag_max_messages} records behind on ${var.consumer_topic}. Runbook: docs/operations.md#kafka-consumer-lag"
  namespace           = var.metrics_namespace
  metric_name         = "ConsumerGroupLag"
  dimensions          = { Environment = var.environment, ConsumerGroup = var.consumer_group, Topic = var.consumer_topic }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.consumer_lag_max_messages
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Records in the PIX topic's dead-letter topic that nobody replayed. Each is a payment,
# refund or incoming credit the worker gave up on: one is enough to look.
resource "aws_cloudwatch_metric_alarm" "kafka_dlq_depth" {
  alarm_name          = "${var.name_prefix}-kafka-dlq-depth"
  alarm_description   = "Records wait in ${var.consumer_topic}.dlq. Runbook: docs/operations.md#kafka-dlq-depth"
  namespace           = var.metrics_namespace
  metric_name         = "DeadLetterDepth"
  dimensions          = { Environment = var.environment, Topic = "${var.consumer_topic}.dlq" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching" # no worker reporting is the consumer-lag alarm's case
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Age of the oldest event still in the outbox (the relays measure it every 15 s). A
# healthy relay publishes within a second; two minutes means no relay runs, Kafka
# refuses, or one aggregate's head keeps failing. No data is breaching: no relay reports.
resource "aws_cloudwatch_metric_alarm" "outbox_lag" {
  alarm_name          = "${var.name_prefix}-outbox-lag"
  alarm_description   = "The oldest unpublished outbox event is older than ${var.outbox_max_age_seconds}s. Runbook: docs/operations.md#outbox-lag"
  namespace           = var.metrics_namespace
  metric_name         = "OutboxOldestEventAge"
  dimensions          = { Environment = var.environment }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.outbox_max_age_seconds
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# p99 from a PIX payment's request to SETTLED. PIX is instant: the network answers in
# seconds, so a p99 above var.settlement_p99_seconds for 3 of 5 minutes means the
# worker, the ledger or the network is slow for a real share of customers.
resource "aws_cloudwatch_metric_alarm" "settlement_latency" {
  alarm_name          = "${var.name_prefix}-pix-settlement-latency"
  alarm_description   = "p99 PIX settlement latency above ${var.settlement_p99_seconds}s. Runbook: docs/operations.md#pix-settlement-latency"
  namespace           = var.metrics_namespace
  metric_name         = "PixSettlementLatency"
  dimensions          = { Environment = var.environment }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.settlement_p99_seconds
  treat_missing_data  = "notBreaching" # no payment, no latency
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Wrong MFA codes across all users. People mistype a few codes an hour; var.mfa_failures_per_5_minutes
# in five minutes is someone guessing codes behind stolen passwords (each challenge
# allows few attempts, so this is many accounts at once).
resource "aws_cloudwatch_metric_alarm" "mfa_failures" {
  alarm_name          = "${var.name_prefix}-mfa-failures"
  alarm_description   = "More than ${var.mfa_failures_per_5_minutes} wrong MFA codes in 5 minutes. Runbook: docs/operations.md#mfa-failures-and-login-lockouts"
  namespace           = var.metrics_namespace
  metric_name         = "MfaFailures"
  dimensions          = { Environment = var.environment }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.mfa_failures_per_5_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Logins that ended in a lockout (10 failures in 15 minutes each). A handful a day is
# forgetful customers; var.lockouts_per_5_minutes in five minutes is password spraying.
resource "aws_cloudwatch_metric_alarm" "login_lockouts" {
  alarm_name          = "${var.name_prefix}-login-lockouts"
  alarm_description   = "More than ${var.lockouts_per_5_minutes} login lockouts in 5 minutes. Runbook: docs/operations.md#mfa-failures-and-login-lockouts"
  namespace           = var.metrics_namespace
  metric_name         = "LoginLockouts"
  dimensions          = { Environment = var.environment }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lockouts_per_5_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Ledger results our own callers should never provoke (a transfer to the same account,
# an id reused with other fields, a missing pending transfer...): a bug or tampering,
# never a customer's doing. Insufficient funds and idempotent retries are excluded
# (finbank_adapters.metrics.EXPECTED_LEDGER_RESULTS). One is enough to look.
resource "aws_cloudwatch_metric_alarm" "ledger_unexpected_results" {
  alarm_name          = "${var.name_prefix}-ledger-unexpected-results"
  alarm_description   = "The ledger answered result codes no caller should provoke. Runbook: docs/operations.md#ledger-unexpected-results"
  namespace           = var.metrics_namespace
  metric_name         = "LedgerUnexpectedResults"
  dimensions          = { Environment = var.environment }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# The daily reconciliation's discrepancy count (the Batch job writes it once a run). Any
# discrepancy is money booked differently from what settled. Period: a day, so the alarm
# stays up until the next run is clean.
resource "aws_cloudwatch_metric_alarm" "reconciliation_discrepancies" {
  alarm_name          = "${var.name_prefix}-reconciliation-discrepancies"
  alarm_description   = "The daily reconciliation found discrepancies. Runbook: docs/operations.md#reconciliation-discrepancies"
  namespace           = var.metrics_namespace
  metric_name         = "ReconciliationDiscrepancies"
  dimensions          = { Environment = var.environment }
  statistic           = "Maximum"
  period              = 86400
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "stream_lambda_errors" {
  alarm_name          = "${var.name_prefix}-pix-stream-errors"
  alarm_description   = "The PIX stream Lambda is failing invocations. Runbook: docs/operations.md#pix-stream-dlq-depth"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.stream_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
