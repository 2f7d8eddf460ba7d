# Alarms and where they go. Every alarm notifies the SNS topic (encrypted with
# the stack's key); its runbook is in docs/operations.md under the alarm's name.
#
# - http-5xx-rate and http-p99-latency read the load balancer in front of
#   `finbank serve` (provisioned by the compute platform; its ARN suffix is an input);
# - pix-stream-dlq-depth reads the stream Lambda's on-failure queue;
# - kafka-consumer-lag reads MSK's consumer-lag metrics for the settlement worker's group;
# - reconciliation-discrepancies reads the custom metric `finbank reconcile` publishes.

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

resource "aws_cloudwatch_metric_alarm" "consumer_lag" {
  for_each            = toset(var.consumer_lag_topics)
  alarm_name          = "${var.name_prefix}-kafka-consumer-lag-${replace(each.key, ".", "-")}"
  alarm_description   = "Consumer group ${var.consumer_group} is more than ${var.consumer_lag_max_messages} messages behind on ${each.key}. Runbook: docs/operations.md#kafka-consumer-lag"
  namespace           = "AWS/Kafka"
  metric_name         = "SumOffsetLag"
  dimensions          = { "Cluster Name" = var.msk_cluster_name, "Consumer Group" = var.consumer_group, Topic = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.consumer_lag_max_messages
  treat_missing_data  = "breaching" # a consumer group that stops reporting is not healthy
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

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
