"""The egress worker (issue 17 work package 2; design in ``services/egress/README.md``)."""
