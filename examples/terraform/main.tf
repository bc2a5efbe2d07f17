# main.tf - a declared fleet from Terraform: the certificates are a local value, published as the
# output "certfleet" (so that `terraform output -json | certfleet sync --file -` reads it), and a
# null_resource hands the same JSON to certfleet sync and run whenever it changes.
# Not executed in certfleet's tests (Terraform is not installable there); see the README.

terraform {
  required_providers {
    null = {
      source  = "hashicorp/null"
      version = "~> 3.2"
    }
  }
}

variable "certfleet_bin" {
  description = "the certfleet program; its settings (CERTFLEET_DB, CERTFLEET_DIRECTORY, ...) come from the environment terraform runs in"
  type        = string
  default     = "certfleet"
}

locals {
  fleet = {
    certificates = [
      { names = ["example.com", "www.example.com"] },
      { names = ["*.apps.example.com"], key_type = "ec-p384" },
      { names = ["api.example.com"], key_type = "rsa-2048", profile = "shortlived" },
    ]
  }
}

# `terraform output -json` prints {"certfleet": {"sensitive": false, "type": ..., "value": {...}}},
# which certfleet sync --file - and enqueue --json - accept as it is.
output "certfleet" {
  value = local.fleet
}

resource "null_resource" "certfleet" {
  triggers = {
    fleet = jsonencode(local.fleet)
  }

  # The JSON goes in through the environment and standard input, never through argv.
  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    command     = "printf '%s' \"$FLEET_JSON\" | \"$CERTFLEET\" sync --file - && \"$CERTFLEET\" run --no-progress"
    environment = {
      FLEET_JSON = jsonencode(local.fleet)
      CERTFLEET  = var.certfleet_bin
    }
  }
}
