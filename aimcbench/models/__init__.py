"""aimcbench.models"""
