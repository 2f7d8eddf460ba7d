# MSK (Kafka) for the domain events: SASL/SCRAM-SHA-512 over TLS only (port
# 9096), no unauthenticated or plaintext listener, encrypted at rest with the
# stack's key, broker logs in CloudWatch. The SCRAM user's password is
# generated here and kept in a Secrets Manager secret named AmazonMSK_* (the
# prefix MSK requires); the application secret repeats it for the app.

resource "aws_security_group" "this" {
  name        = "${var.name_prefix}-msk"
  description = "Kafka SASL_SSL from the application subnets only"
  vpc_id      = var.vpc_id

  ingress {
    description = "Kafka SASL_SSL (SCRAM) from the VPC"
    from_port   = 9096
    to_port     = 9096
    protocol    = "tcp"
    cidr_blocks = var.client_cidr_blocks
  }
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/finbank/${var.name_prefix}/msk"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_msk_configuration" "this" {
  name           = "${var.name_prefix}-kafka"
  kafka_versions = [var.kafka_version]

  # Topics are created by the deploy (docs/events.md), never by a typo in a producer.
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    unclean.leader.election.enable=false
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name_prefix
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_gib
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
      iam   = false
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }
}

# -- the application's SCRAM user ---------------------------------------------------

resource "random_password" "scram" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "scram" {
  #checkov:skip=CKV2_AWS_57:SCRAM credentials rotate by a planned change (new version + MSK re-association + app restart), see docs/operations.md
  name        = "AmazonMSK_${var.name_prefix}_app"
  description = "SCRAM-SHA-512 credentials of the finbank application user"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "scram" {
  secret_id = aws_secretsmanager_secret.scram.id
  secret_string = jsonencode({
    username = var.scram_username
    password = random_password.scram.result
  })
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [aws_secretsmanager_secret.scram.arn]
  depends_on      = [aws_secretsmanager_secret_version.scram]
}
