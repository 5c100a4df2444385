"""aimcbench.report"""
