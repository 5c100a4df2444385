"""aimcbench.data"""
