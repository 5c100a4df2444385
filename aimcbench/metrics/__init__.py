"""aimcbench.metrics"""
