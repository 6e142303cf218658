"""What tests and benchmarks share: servers, workers, topic readers, builders of records.

Test modules import from here, never from each other; benchmarks (bench/) do too.
"""

import os

# Which broker the session's stack starts: tansu (the default) or kafka (Apache Kafka).
TEST_BROKER = os.environ.get("RIVERWATCH_TEST_BROKER", "tansu")
