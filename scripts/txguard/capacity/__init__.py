"""`txguard capacity`: instances, cost per transaction and binding limits at a sustained rate,
from benchmark figures (`plan`)."""
